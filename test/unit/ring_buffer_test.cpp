#include "core/ring_buffer.hpp"

#include "core/clock.hpp"
#include "core/sse.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

using ids = std::vector<uint64_t>;

stored make(uint64_t id, int64_t ts_ms, double price = 97000.5) {
  update u{id, ts_ms, price};
  return stored{u, encode_update(u), 0, nullptr};
}

// Ids 1..n at ts 1000, 2000, ...
void fill(ring_buffer& buf, uint64_t from, uint64_t to) {
  for (auto id = from; id <= to; ++id)
    REQUIRE(buf.push(make(id, static_cast<int64_t>(id) * 1000)));
}

// Ids from..to at ts id * 1000, each following the one before in the log (the
// first follows `prev`), as a cluster node reads them.
void follow(ring_buffer& buf, uint64_t prev, uint64_t from, uint64_t to) {
  for (auto id = from; id <= to; ++id, prev = id - 1)
    REQUIRE(buf.push(make(id, static_cast<int64_t>(id) * 1000), prev));
}

// The ids of replayed frames, read back from their `id:` lines.
ids frame_ids(const history& h) {
  ids out;
  for (auto& f : h.frames)
    out.push_back(std::stoull(std::string(f->text().substr(4))));
  return out;
}

ids entry_ids(const std::vector<stored>& xs) {
  ids out;
  for (auto& s : xs)
    out.push_back(s.u.id);
  return out;
}

resume_point latest() {
  return resume_point{};
}

resume_point after(uint64_t id) {
  resume_point p;
  p.what = resume_point::kind::after_id;
  p.id = id;
  p.given = std::to_string(id);
  return p;
}

resume_point since(int64_t ms) {
  resume_point p;
  p.what = resume_point::kind::since;
  p.since_ms = ms;
  return p;
}

resume_point live() {
  resume_point p;
  p.what = resume_point::kind::live;
  return p;
}

} // namespace

// -- storage ------------------------------------------------------------------

TEST_CASE("a new buffer is empty") {
  ring_buffer buf{4, 1h};
  CHECK(buf.empty());
  CHECK(buf.size() == 0);
  CHECK(buf.capacity() == 4);
  CHECK(buf.newest_id() == 0);
  CHECK(buf.since(0).empty());
}

TEST_CASE("pushed entries are kept oldest first") {
  ring_buffer buf{4, 1h};
  fill(buf, 1, 3);
  CHECK(buf.size() == 3);
  CHECK(!buf.empty());
  CHECK(buf.oldest().u.id == 1);
  CHECK(buf.newest().u.id == 3);
  CHECK(buf.newest_id() == 3);
  CHECK(entry_ids(buf.since(0)) == ids{1, 2, 3});
  CHECK(buf.newest().u == update{3, 3000, 97000.5});
}

TEST_CASE("a push whose id does not increase is refused") {
  ring_buffer buf{4, 1h};
  CHECK(!buf.push(make(0, 0)));
  CHECK(buf.empty());
  CHECK(buf.push(make(10, 1000)));
  CHECK(!buf.push(make(10, 2000)));
  CHECK(!buf.push(make(9, 2000)));
  CHECK(!buf.push(make(0, 2000)));
  CHECK(buf.size() == 1);
  CHECK(buf.newest().u.ts_ms == 1000);
  CHECK(buf.push(make(11, 2000)));
}

TEST_CASE("ids of evicted entries are still refused") {
  ring_buffer buf{1, 1h};
  fill(buf, 1, 3);
  CHECK(!buf.push(make(2, 9000)));
  CHECK(!buf.push(make(3, 9000)));
  CHECK(buf.newest_id() == 3);
  buf.expire(1'000'000'000);
  CHECK(buf.empty());
  CHECK(buf.newest_id() == 3);
  CHECK(!buf.push(make(3, 9000)));
  CHECK(buf.push(make(4, 9000)));
}

TEST_CASE("a full buffer evicts its oldest entry") {
  ring_buffer buf{3, 1h};
  fill(buf, 1, 5);
  CHECK(buf.size() == 3);
  CHECK(buf.oldest().u.id == 3);
  CHECK(buf.newest().u.id == 5);
  CHECK(entry_ids(buf.since(0)) == ids{3, 4, 5});
}

TEST_CASE("the ring keeps its order at every wrap-around offset") {
  ring_buffer buf{3, 1h};
  for (uint64_t id = 1; id <= 10; ++id) {
    REQUIRE(buf.push(make(id, static_cast<int64_t>(id) * 1000)));
    ids expected;
    for (auto x = id > 3 ? id - 2 : 1; x <= id; ++x)
      expected.push_back(x);
    CHECK(entry_ids(buf.since(0)) == expected);
    CHECK(frame_ids(buf.query(after(0), id)) == expected);
    CHECK(buf.oldest().u.id == expected.front());
    CHECK(buf.newest().u.id == id);
  }
}

TEST_CASE("a capacity of zero acts as one") {
  ring_buffer buf{0, 1h};
  CHECK(buf.capacity() == 1);
  fill(buf, 1, 2);
  CHECK(buf.size() == 1);
  CHECK(buf.oldest().u.id == 2);
}

TEST_CASE("a capacity of one holds the newest entry") {
  ring_buffer buf{1, 1h};
  fill(buf, 1, 4);
  CHECK(entry_ids(buf.since(0)) == ids{4});
  auto h = buf.query(after(3), 4);
  CHECK(frame_ids(h) == ids{4});
  CHECK(!h.gap);
  CHECK(buf.query(after(2), 4).gap);
}

TEST_CASE("evicted frames are released by the buffer") {
  ring_buffer buf{2, 1h};
  auto first = make(1, 1000);
  auto frame = first.frame;
  REQUIRE(buf.push(first));
  first.frame.reset();
  CHECK(frame.use_count() == 2);
  fill(buf, 2, 3);
  CHECK(frame.use_count() == 1);
}

TEST_CASE("replies share the stored bytes instead of copying them") {
  ring_buffer buf{4, 1h};
  auto s = make(1, 1000);
  REQUIRE(buf.push(s));
  auto h = buf.query(after(0), 1);
  REQUIRE(h.frames.size() == 1);
  CHECK(h.frames[0].get() == s.frame.get());
  CHECK(buf.since(0).at(0).frame.get() == s.frame.get());
}

// -- TTL ----------------------------------------------------------------------

TEST_CASE("expire evicts entries older than the TTL") {
  ring_buffer buf{10, 10s};
  fill(buf, 1, 5);    // ts 1000 .. 5000
  buf.expire(13'000); // cutoff 3000: ts 1000 and 2000 go
  CHECK(entry_ids(buf.since(0)) == ids{3, 4, 5});
  buf.expire(13'000);
  CHECK(buf.size() == 3);
}

TEST_CASE("an entry exactly as old as the TTL is kept") {
  ring_buffer buf{10, 10s};
  fill(buf, 1, 2);
  buf.expire(11'000); // cutoff 1000: ts 1000 is not < 1000
  CHECK(buf.size() == 2);
  buf.expire(11'001);
  CHECK(buf.size() == 1);
  CHECK(buf.oldest().u.id == 2);
}

TEST_CASE("expire can empty the buffer and the buffer refills") {
  ring_buffer buf{10, 10s};
  fill(buf, 1, 3);
  buf.expire(1'000'000);
  CHECK(buf.empty());
  CHECK(buf.since(0).empty());
  REQUIRE(buf.push(make(4, 1'000'000)));
  CHECK(entry_ids(buf.since(0)) == ids{4});
}

TEST_CASE("expire on an empty buffer and at extreme clocks is safe") {
  ring_buffer buf{4, 1h};
  buf.expire(0);
  CHECK(buf.empty());
  fill(buf, 1, 2);
  buf.expire(std::numeric_limits<int64_t>::min());
  CHECK(buf.size() == 2);
  buf.expire(std::numeric_limits<int64_t>::max());
  CHECK(buf.empty());
}

TEST_CASE("a zero TTL evicts everything older than now") {
  ring_buffer buf{4, 0ms};
  fill(buf, 1, 3);
  buf.expire(3000);
  CHECK(entry_ids(buf.since(0)) == ids{3});
}

TEST_CASE("a TTL and a capacity evict together") {
  ring_buffer buf{3, 10s};
  fill(buf, 1, 5);
  buf.expire(14'000);
  CHECK(entry_ids(buf.since(0)) == ids{4, 5});
  fill(buf, 6, 7);
  CHECK(entry_ids(buf.since(0)) == ids{5, 6, 7});
}

// -- since --------------------------------------------------------------------

TEST_CASE("since includes entries at exactly the given millisecond") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 5);
  CHECK(entry_ids(buf.since(3000)) == ids{3, 4, 5});
  CHECK(entry_ids(buf.since(2999)) == ids{3, 4, 5});
  CHECK(entry_ids(buf.since(3001)) == ids{4, 5});
  CHECK(entry_ids(buf.since(0)) == ids{1, 2, 3, 4, 5});
  CHECK(entry_ids(buf.since(std::numeric_limits<int64_t>::min()))
        == ids{1, 2, 3, 4, 5});
  CHECK(buf.since(5001).empty());
}

TEST_CASE("since keeps entries that share a timestamp together") {
  ring_buffer buf{10, 1h};
  REQUIRE(buf.push(make(1, 1000)));
  REQUIRE(buf.push(make(2, 2000)));
  REQUIRE(buf.push(make(3, 2000)));
  REQUIRE(buf.push(make(4, 2000)));
  REQUIRE(buf.push(make(5, 3000)));
  CHECK(entry_ids(buf.since(2000)) == ids{2, 3, 4, 5});
  CHECK(entry_ids(buf.since(2001)) == ids{5});
}

// -- query: latest and live ---------------------------------------------------

TEST_CASE("no resume point replays the newest frame the seam covers") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 5);
  auto h = buf.query(latest(), 5);
  CHECK(frame_ids(h) == ids{5});
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
  CHECK(h.oldest == 1u);
  // Frame 5 is still on its way live: the newest <= upto is replayed.
  auto behind = buf.query(latest(), 4);
  CHECK(frame_ids(behind) == ids{4});
  CHECK(behind.end_id == 4);
}

TEST_CASE("no resume point before any frame was forwarded replays nothing") {
  ring_buffer buf{10, 1h};
  fill(buf, 5, 6);
  auto h = buf.query(latest(), 0);
  CHECK(h.frames.empty());
  CHECK(!h.gap);
  CHECK(h.end_id == 0);
  CHECK(buf.query(latest(), 4).frames.empty());
}

TEST_CASE("no resume point on an empty buffer replays nothing, without a gap") {
  ring_buffer buf{10, 1h};
  auto h = buf.query(latest(), 0);
  CHECK(h.frames.empty());
  CHECK(!h.gap);
  CHECK(h.oldest == std::nullopt);
}

TEST_CASE("a live resume point replays nothing and has no gap") {
  ring_buffer buf{2, 1h};
  fill(buf, 1, 5);
  auto h = buf.query(live(), 5);
  CHECK(h.frames.empty());
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
  CHECK(h.oldest == 4u);
  ring_buffer none{2, 1h};
  CHECK(!none.query(live(), 0).gap);
}

// -- query: after an id -------------------------------------------------------

TEST_CASE("a resume id replays every frame after it up to the seam") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 6);
  auto h = buf.query(after(2), 5);
  CHECK(frame_ids(h) == ids{3, 4, 5});
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
  CHECK(h.oldest == 1u);
}

TEST_CASE("a resume id between stored ids replays from the next one") {
  ring_buffer buf{10, 1h};
  REQUIRE(buf.push(make(1000, 1000)));
  REQUIRE(buf.push(make(2000, 2000)));
  REQUIRE(buf.push(make(3000, 3000)));
  auto h = buf.query(after(1500), 3000);
  CHECK(frame_ids(h) == ids{2000, 3000});
  CHECK(!h.gap);
}

TEST_CASE("a resume from the newest id replays nothing and has no gap") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 5);
  auto h = buf.query(after(5), 5);
  CHECK(h.frames.empty());
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
}

TEST_CASE("a resume id the client has beyond the seam raises end_id") {
  // The client saw frame 5 on an earlier connection; the broadcaster's ack
  // is older. Frame 5 must not be forwarded again.
  ring_buffer buf{10, 1h};
  fill(buf, 1, 5);
  auto h = buf.query(after(5), 3);
  CHECK(h.frames.empty());
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
}

TEST_CASE("a resume id newer than any known id is a gap and filters nothing") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 5);
  auto h = buf.query(after(99), 5);
  CHECK(h.frames.empty());
  CHECK(h.gap);
  CHECK(h.end_id == 5);
  CHECK(h.oldest == 1u);
  CHECK(buf.query(after(6), 5).gap);
  CHECK(buf.query(after(6), 5).end_id == 5);
  CHECK(buf.query(after(UINT64_MAX), 5).end_id == 5);
}

TEST_CASE("a resume before the first update this process holds is a gap") {
  // Nothing evicted yet: updates before id 10 may exist only elsewhere.
  ring_buffer buf{10, 1h};
  fill(buf, 10, 12);
  auto h = buf.query(after(9), 12);
  CHECK(frame_ids(h) == ids{10, 11, 12});
  CHECK(h.gap);
  CHECK(h.oldest == 10u);
  CHECK(buf.query(after(0), 12).gap);
  CHECK(!buf.query(after(10), 12).gap);
  CHECK(!buf.query(after(11), 12).gap);
}

TEST_CASE("a resume before an evicted update is a gap") {
  ring_buffer buf{3, 1h};
  fill(buf, 1, 6); // 1..3 evicted, 4..6 buffered
  auto h = buf.query(after(2), 6);
  CHECK(frame_ids(h) == ids{4, 5, 6});
  CHECK(h.gap);
  CHECK(h.oldest == 4u);
  CHECK(h.end_id == 6);
  CHECK(buf.query(after(0), 6).gap);
}

TEST_CASE("a resume from exactly the newest evicted id is not a gap") {
  ring_buffer buf{3, 1h};
  fill(buf, 1, 6);
  auto h = buf.query(after(3), 6);
  CHECK(frame_ids(h) == ids{4, 5, 6});
  CHECK(!h.gap);
  CHECK(h.oldest == 4u);
}

TEST_CASE("a resume from exactly the newest id evicted by TTL is not a gap") {
  ring_buffer buf{10, 10s};
  fill(buf, 1, 5);
  buf.expire(13'000); // evicts 1 and 2
  CHECK(!buf.query(after(2), 5).gap);
  CHECK(buf.query(after(1), 5).gap);
  CHECK(frame_ids(buf.query(after(2), 5)) == ids{3, 4, 5});
}

TEST_CASE("a resume id between evicted ids and the oldest is not a gap") {
  ring_buffer buf{10, 1h};
  REQUIRE(buf.push(make(100, 1000)));
  REQUIRE(buf.push(make(200, 2000)));
  REQUIRE(buf.push(make(300, 3000)));
  buf.expire(3'601'500); // evicts 100
  CHECK(!buf.query(after(150), 300).gap);
  CHECK(!buf.query(after(100), 300).gap);
  CHECK(buf.query(after(99), 300).gap);
}

TEST_CASE("any resume id on an emptied buffer is a gap") {
  ring_buffer buf{10, 10s};
  fill(buf, 1, 5);
  buf.expire(1'000'000);
  for (uint64_t r : {0, 4, 5, 6}) {
    auto h = buf.query(after(r), 5);
    CHECK_MESSAGE(h.gap, r);
    CHECK(h.frames.empty());
    CHECK(h.oldest == std::nullopt);
  }
  CHECK(buf.query(after(5), 5).end_id == 5);
}

TEST_CASE("any resume id on a buffer that never held anything is a gap") {
  ring_buffer buf{10, 1h};
  auto h = buf.query(after(0), 0);
  CHECK(h.gap);
  CHECK(h.frames.empty());
  CHECK(h.end_id == 0);
  CHECK(h.oldest == std::nullopt);
  CHECK(buf.query(after(1'795'718'717'123), 0).gap);
  CHECK(buf.query(after(1'795'718'717'123), 0).end_id == 0);
}

TEST_CASE("frames newer than the seam are left to the live stream") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 8);
  CHECK(frame_ids(buf.query(after(3), 5)) == ids{4, 5});
  CHECK(frame_ids(buf.query(after(3), 3)).empty());
  CHECK(frame_ids(buf.query(after(3), 0)).empty());
  CHECK(buf.query(after(3), 0).end_id == 3);
}

// -- query: since -------------------------------------------------------------

TEST_CASE("a since resume replays frames at or after it up to the seam") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 6);
  auto h = buf.query(since(3000), 5);
  CHECK(frame_ids(h) == ids{3, 4, 5});
  CHECK(!h.gap);
  CHECK(h.end_id == 5);
  CHECK(h.oldest == 1u);
  CHECK(frame_ids(buf.query(since(2500), 6)) == ids{3, 4, 5, 6});
  CHECK(buf.query(since(9000), 6).frames.empty());
  CHECK(!buf.query(since(9000), 6).gap);
}

TEST_CASE("a since before the first update this process holds is a gap") {
  ring_buffer buf{10, 1h};
  fill(buf, 1, 3);
  CHECK(buf.query(since(999), 3).gap);
  CHECK(frame_ids(buf.query(since(999), 3)) == ids{1, 2, 3});
  CHECK(!buf.query(since(1000), 3).gap);
}

TEST_CASE("a since at or before an evicted update's time is a gap") {
  ring_buffer buf{3, 1h};
  fill(buf, 1, 6); // 3 (ts 3000) is the newest evicted
  CHECK(buf.query(since(2000), 6).gap);
  CHECK(buf.query(since(3000), 6).gap);
  auto h = buf.query(since(3001), 6);
  CHECK(!h.gap);
  CHECK(frame_ids(h) == ids{4, 5, 6});
  CHECK(!buf.query(since(4000), 6).gap);
}

TEST_CASE(
    "a since that shares its millisecond with an evicted update is a gap") {
  ring_buffer buf{2, 1h};
  REQUIRE(buf.push(make(1, 5000)));
  REQUIRE(buf.push(make(2, 5000)));
  REQUIRE(buf.push(make(3, 5000))); // evicts 1, also at 5000
  auto h = buf.query(since(5000), 3);
  CHECK(h.gap);
  CHECK(frame_ids(h) == ids{2, 3});
}

TEST_CASE("a since on an empty buffer is a gap") {
  ring_buffer never{10, 1h};
  CHECK(never.query(since(0), 0).gap);
  ring_buffer emptied{10, 1s};
  fill(emptied, 1, 2);
  emptied.expire(1'000'000);
  auto h = emptied.query(since(1'000'000), 2);
  CHECK(h.gap);
  CHECK(h.oldest == std::nullopt);
  CHECK(h.end_id == 2);
}

// -- holes (cluster mode) -----------------------------------------------------

TEST_CASE("entries that follow the newest id in the log make no hole") {
  ring_buffer buf{10, 1h};
  auto first = make(1, 1000);
  auto* s = buf.push(first, 0);
  REQUIRE(s != nullptr);
  CHECK(s->u == update{1, 1000, 97000.5});
  CHECK(s->frame.get() == first.frame.get());
  CHECK(s->gap_below == 0);
  auto* second = buf.push(make(2, 2000), 1);
  REQUIRE(second != nullptr);
  CHECK(second->gap_below == 0);
  follow(buf, 2, 3, 5);
  CHECK(buf.holes() == 0);
  for (auto& e : buf.since(0))
    CHECK_MESSAGE(e.gap_below == 0, e.u.id);
  auto h = buf.query(after(1), 5);
  CHECK(frame_ids(h) == ids{2, 3, 4, 5});
  CHECK(!h.gap);
  CHECK(!buf.query(after(4), 5).gap);
  CHECK(!buf.query(since(1000), 5).gap);
}

TEST_CASE("a first entry that follows a trimmed log covers a resume from its "
          "prev") {
  // The node backfills a log whose older entries were trimmed: the first one
  // it holds follows 40, which it never saw.
  ring_buffer buf{10, 1h};
  auto* s = buf.push(make(50, 50'000), 40);
  REQUIRE(s != nullptr);
  CHECK(s->gap_below == 0);
  CHECK(buf.holes() == 0);
  follow(buf, 50, 51, 52);
  CHECK(buf.holes() == 0);
  auto h = buf.query(after(40), 52);
  CHECK(frame_ids(h) == ids{50, 51, 52});
  CHECK(!h.gap);
  CHECK(!buf.query(after(45), 52).gap);
  CHECK(!buf.query(after(50), 52).gap);
  auto below = buf.query(after(39), 52);
  CHECK(frame_ids(below) == ids{50, 51, 52});
  CHECK(below.gap);
  CHECK(buf.query(after(0), 52).gap);
  CHECK(!buf.query(since(50'000), 52).gap);
  CHECK(buf.query(since(49'999), 52).gap);
}

TEST_CASE("a hole where the log skipped ahead is a gap below its prev") {
  // Held 1..3; the next entry read follows 6: 4..6 were trimmed before this
  // node caught up.
  ring_buffer buf{10, 1h};
  follow(buf, 0, 1, 3);
  auto* s = buf.push(make(8, 8000), 6);
  REQUIRE(s != nullptr);
  CHECK(s->u.id == 8);
  CHECK(s->gap_below == 6);
  CHECK(buf.holes() == 1);
  CHECK(buf.newest_id() == 8);
  CHECK(buf.newest().gap_below == 6);

  auto from3 = buf.query(after(3), 8);
  CHECK(frame_ids(from3) == ids{8});
  CHECK(from3.gap);
  CHECK(from3.end_id == 8);
  // The gap names the first id available after the resume point.
  CHECK(from3.oldest == 8u);
  auto from2 = buf.query(after(2), 8);
  CHECK(frame_ids(from2) == ids{3, 8});
  CHECK(from2.gap);
  CHECK(from2.oldest == 3u);
  CHECK(buf.query(after(5), 8).gap);
  // A client that got 6 from another node misses nothing.
  auto from6 = buf.query(after(6), 8);
  CHECK(frame_ids(from6) == ids{8});
  CHECK(!from6.gap);
  CHECK(from6.end_id == 8);
  CHECK(from6.oldest == 1u);
  CHECK(!buf.query(after(7), 8).gap);
  auto from8 = buf.query(after(8), 8);
  CHECK(from8.frames.empty());
  CHECK(!from8.gap);

  // The entry after the hole follows it: no second hole.
  auto* next = buf.push(make(9, 9000), 8);
  REQUIRE(next != nullptr);
  CHECK(next->gap_below == 0);
  CHECK(buf.holes() == 1);
  CHECK(!buf.query(after(8), 9).gap);
  CHECK(buf.query(after(3), 9).gap);
}

TEST_CASE("a hole where the log went back is a gap below the new entry") {
  // Redis restarted empty: the next entry follows nothing (prev 0), or an
  // older entry than the newest held.
  for (uint64_t prev : {0, 3}) {
    ring_buffer buf{10, 1h};
    follow(buf, 0, 1, 5);
    auto* s = buf.push(make(6, 6000), prev);
    REQUIRE(s != nullptr);
    CHECK(s->gap_below == 6);
    CHECK(buf.holes() == 1);
    for (uint64_t r = 0; r <= 5; ++r)
      CHECK_MESSAGE(buf.query(after(r), 6).gap, prev, " ", r);
    auto from5 = buf.query(after(5), 6);
    CHECK(frame_ids(from5) == ids{6});
    CHECK(from5.oldest == 6u);
    CHECK(!buf.query(after(6), 6).gap);
    CHECK(frame_ids(buf.query(after(3), 6)) == ids{4, 5, 6});
  }
}

TEST_CASE("every hole is counted and marks its own entry") {
  ring_buffer buf{10, 1h};
  follow(buf, 0, 1, 2);
  REQUIRE(buf.push(make(5, 5000), 4));
  REQUIRE(buf.push(make(6, 6000), 5));
  REQUIRE(buf.push(make(9, 9000), 0));
  REQUIRE(buf.push(make(12, 12'000), 10));
  CHECK(buf.holes() == 3);
  std::vector<uint64_t> below;
  for (auto& e : buf.since(0))
    below.push_back(e.gap_below);
  CHECK(below == ids{0, 0, 4, 0, 9, 10});
  CHECK(buf.query(after(9), 12).gap);
  CHECK(!buf.query(after(10), 12).gap);
}

TEST_CASE("a since resume across a hole is a gap before the entry after it") {
  ring_buffer buf{10, 1h};
  follow(buf, 0, 1, 3);
  REQUIRE(buf.push(make(8, 8000), 6));
  auto before = buf.query(since(7999), 8);
  CHECK(before.gap);
  CHECK(frame_ids(before) == ids{8});
  CHECK(before.oldest == 8u);
  auto older = buf.query(since(2000), 8);
  CHECK(older.gap);
  CHECK(frame_ids(older) == ids{2, 3, 8});
  CHECK(older.oldest == 2u);
  auto at = buf.query(since(8000), 8);
  CHECK(!at.gap);
  CHECK(frame_ids(at) == ids{8});
  CHECK(at.oldest == 1u);
  auto later = buf.query(since(8001), 8);
  CHECK(!later.gap);
  CHECK(later.frames.empty());
}

TEST_CASE("an old or repeated id after a hole is refused and changes nothing") {
  ring_buffer buf{10, 1h};
  follow(buf, 0, 1, 3);
  REQUIRE(buf.push(make(8, 8000), 6));
  CHECK(buf.push(make(8, 9000), 8) == nullptr);
  CHECK(buf.push(make(8, 9000), 0) == nullptr);
  CHECK(buf.push(make(7, 9000), 6) == nullptr);
  CHECK(buf.push(make(3, 9000), 2) == nullptr);
  CHECK(buf.push(make(0, 9000), 0) == nullptr);
  CHECK(buf.holes() == 1);
  CHECK(buf.size() == 4);
  CHECK(buf.newest_id() == 8);
  CHECK(buf.newest().u == update{8, 8000, 97000.5});
  CHECK(buf.newest().gap_below == 6);
  CHECK(!buf.query(after(6), 8).gap);
  CHECK(buf.query(after(5), 8).gap);
  CHECK(!buf.query(since(8000), 8).gap);
  CHECK(buf.query(since(7999), 8).gap);
  CHECK(entry_ids(buf.since(0)) == ids{1, 2, 3, 8});
  auto* next = buf.push(make(9, 9000), 8);
  REQUIRE(next != nullptr);
  CHECK(next->gap_below == 0);
}

TEST_CASE("an id refused as the first entry changes nothing") {
  ring_buffer buf{10, 1h};
  CHECK(buf.push(make(0, 1000), 5) == nullptr);
  CHECK(buf.empty());
  CHECK(buf.holes() == 0);
  REQUIRE(buf.push(make(10, 10'000), 0));
  CHECK(!buf.query(after(10), 10).gap);
  CHECK(buf.query(after(9), 10).gap);
}

TEST_CASE("evicting across a hole keeps the gap answers") {
  ring_buffer buf{3, 1h};
  follow(buf, 0, 1, 3);
  REQUIRE(buf.push(make(8, 8000), 6)); // evicts 1: holds 2, 3, 8
  CHECK(entry_ids(buf.since(0)) == ids{2, 3, 8});
  CHECK(buf.query(after(1), 8).gap);
  CHECK(buf.query(after(3), 8).gap);
  CHECK(!buf.query(after(6), 8).gap);

  follow(buf, 8, 9, 10); // evicts 2 and 3: holds 8, 9, 10
  CHECK(entry_ids(buf.since(0)) == ids{8, 9, 10});
  // 3 is the newest evicted, but the hole above it is still a gap.
  auto from3 = buf.query(after(3), 10);
  CHECK(from3.gap);
  CHECK(frame_ids(from3) == ids{8, 9, 10});
  CHECK(buf.query(after(5), 10).gap);
  auto from6 = buf.query(after(6), 10);
  CHECK(!from6.gap);
  CHECK(frame_ids(from6) == ids{8, 9, 10});
  CHECK(buf.query(since(7999), 10).gap);
  CHECK(!buf.query(since(8000), 10).gap);

  follow(buf, 10, 11, 11); // evicts 8, the entry after the hole
  CHECK(entry_ids(buf.since(0)) == ids{9, 10, 11});
  CHECK(buf.query(after(6), 11).gap);
  CHECK(buf.query(after(7), 11).gap);
  auto from8 = buf.query(after(8), 11);
  CHECK(!from8.gap);
  CHECK(frame_ids(from8) == ids{9, 10, 11});
  CHECK(buf.query(since(8000), 11).gap);
  CHECK(!buf.query(since(8001), 11).gap);
  CHECK(buf.holes() == 1);
}

TEST_CASE("expiring across a hole keeps the gap answers") {
  ring_buffer buf{10, 10s};
  follow(buf, 0, 1, 3);
  REQUIRE(buf.push(make(8, 8000), 6));
  REQUIRE(buf.push(make(9, 9000), 8));
  buf.expire(13'500); // cutoff 3500: evicts 1..3
  CHECK(entry_ids(buf.since(0)) == ids{8, 9});
  CHECK(buf.query(after(3), 9).gap);
  CHECK(!buf.query(after(6), 9).gap);
  buf.expire(18'500); // cutoff 8500: evicts 8
  CHECK(buf.query(after(6), 9).gap);
  CHECK(!buf.query(after(8), 9).gap);
}

TEST_CASE("a history reply names the newest id known when it was answered") {
  ring_buffer buf{10, 10s};
  CHECK(buf.query(after(0), 0).newest == 0);
  CHECK(buf.query(latest(), 0).newest == 0);
  follow(buf, 0, 1, 3);
  // Newer than the seam: 3 is still on its way live.
  auto h = buf.query(after(1), 2);
  CHECK(h.newest == 3);
  CHECK(h.end_id == 2);
  REQUIRE(buf.push(make(8, 8000), 6));
  CHECK(buf.query(after(3), 8).newest == 8);
  CHECK(buf.query(since(0), 3).newest == 8);
  CHECK(buf.query(latest(), 3).newest == 8);
  CHECK(buf.query(live(), 8).newest == 8);
  CHECK(buf.query(after(99), 8).newest == 8);
  // Refused pushes leave it alone.
  CHECK(buf.push(make(7, 9000), 8) == nullptr);
  CHECK(buf.query(after(3), 8).newest == 8);
  // Evicted, still known.
  buf.expire(1'000'000);
  REQUIRE(buf.empty());
  CHECK(buf.query(after(3), 8).newest == 8);
}

// -- differential -------------------------------------------------------------

namespace {

// Everything ever pushed, with a flag: the DESIGN.md rules read literally.
struct reference_model {
  struct entry {
    stored s;
    bool evicted = false;
  };
  size_t capacity;
  int64_t ttl_ms;
  std::vector<entry> all;

  std::vector<const entry*> buffered() const {
    std::vector<const entry*> out;
    for (auto& e : all)
      if (!e.evicted)
        out.push_back(&e);
    return out;
  }

  bool push(const stored& s) {
    if (s.u.id == 0 || (!all.empty() && s.u.id <= all.back().s.u.id))
      return false;
    if (buffered().size() == capacity)
      for (auto& e : all)
        if (!e.evicted) {
          e.evicted = true;
          break;
        }
    all.push_back({s});
    return true;
  }

  void expire(int64_t now) {
    for (auto& e : all)
      if (e.s.u.ts_ms < now - ttl_ms)
        e.evicted = true;
  }

  bool any_evicted() const {
    for (auto& e : all)
      if (e.evicted)
        return true;
    return false;
  }

  history query(const resume_point& p, uint64_t upto) const {
    history h;
    h.end_id = upto;
    auto buf = buffered();
    if (!buf.empty())
      h.oldest = buf.front()->s.u.id;
    uint64_t newest = all.empty() ? 0 : all.back().s.u.id;
    switch (p.what) {
    case resume_point::kind::latest:
      for (auto* e : buf)
        if (e->s.u.id <= upto)
          h.frames = {e->s.frame};
      break;
    case resume_point::kind::after_id:
      for (auto* e : buf)
        if (e->s.u.id > p.id && e->s.u.id <= upto)
          h.frames.push_back(e->s.frame);
      h.gap = buf.empty() || p.id > newest;
      for (auto& e : all)
        h.gap = h.gap || (e.evicted && e.s.u.id > p.id);
      h.gap = h.gap || (!any_evicted() && p.id < all.front().s.u.id);
      if (p.id <= newest && p.id > upto)
        h.end_id = p.id;
      break;
    case resume_point::kind::since:
      for (auto* e : buf)
        if (e->s.u.ts_ms >= p.since_ms && e->s.u.id <= upto)
          h.frames.push_back(e->s.frame);
      h.gap = buf.empty();
      for (auto& e : all)
        h.gap = h.gap || (e.evicted && e.s.u.ts_ms >= p.since_ms);
      h.gap = h.gap || (!any_evicted() && p.since_ms < all.front().s.u.ts_ms);
      break;
    case resume_point::kind::live:
      break;
    }
    return h;
  }
};

bool same(const history& a, const history& b) {
  if (a.end_id != b.end_id || a.gap != b.gap || a.oldest != b.oldest
      || a.frames.size() != b.frames.size())
    return false;
  for (size_t i = 0; i < a.frames.size(); ++i)
    if (a.frames[i].get() != b.frames[i].get())
      return false;
  return true;
}

} // namespace

TEST_CASE("the ring buffer agrees with a dumb reference model") {
  seeded_random rng{20261126};
  auto pick = [&](uint64_t n) {
    return static_cast<uint64_t>(rng.uniform() * static_cast<double>(n));
  };
  int mismatches = 0;
  int gaps = 0;
  int clean = 0;
  int exact_evicted = 0;
  int wraps = 0;
  for (int round = 0; round < 300; ++round) {
    auto capacity = 1 + pick(8);
    auto ttl = static_cast<int64_t>(pick(30));
    ring_buffer buf{capacity, std::chrono::milliseconds{ttl}};
    reference_model ref{capacity, ttl, {}};
    uint64_t id = 0;
    int64_t ts = static_cast<int64_t>(pick(100));
    for (int op = 0; op < 200; ++op) {
      auto what = pick(10);
      if (what < 5) {
        // Mostly increasing ids, sometimes a stale or repeated one.
        auto candidate = pick(10) == 0 ? id - std::min<uint64_t>(id, pick(3))
                                       : id + 1 + pick(3);
        ts += static_cast<int64_t>(pick(4));
        auto s = make(candidate, ts);
        auto got = buf.push(s);
        if (got != ref.push(s))
          ++mismatches;
        if (got)
          id = candidate;
      } else if (what < 6) {
        auto now = ts + static_cast<int64_t>(pick(10));
        buf.expire(now);
        ref.expire(now);
      } else {
        resume_point p;
        switch (pick(4)) {
        case 0:
          p = latest();
          break;
        case 1:
          p = after(pick(id + 4));
          break;
        case 2:
          p = since(ts - 40 + static_cast<int64_t>(pick(50)));
          break;
        default:
          p = live();
        }
        // Usually the broadcaster has forwarded everything; sometimes not.
        auto upto = pick(3) == 0 ? pick(id + 3) : id;
        auto a = buf.query(p, upto);
        auto b = ref.query(p, upto);
        if (!same(a, b)) {
          if (++mismatches <= 5)
            MESSAGE("round ", round, " op ", op, " kind ",
                    static_cast<int>(p.what), " id ", p.id, " since ",
                    p.since_ms, " upto ", upto, " gap ", a.gap, "/", b.gap,
                    " end ", a.end_id, "/", b.end_id, " frames ",
                    a.frames.size(), "/", b.frames.size());
        }
        (a.gap ? gaps : clean) += 1;
        if (p.what == resume_point::kind::after_id) {
          for (auto it = ref.all.rbegin(); it != ref.all.rend(); ++it)
            if (it->evicted) {
              exact_evicted += it->s.u.id == p.id ? 1 : 0;
              break;
            }
        }
        auto from = static_cast<int64_t>(pick(200));
        std::vector<const stored*> want;
        for (auto* e : ref.buffered())
          if (e->s.u.ts_ms >= from)
            want.push_back(&e->s);
        auto got = buf.since(from);
        bool ok = got.size() == want.size();
        for (size_t i = 0; ok && i < got.size(); ++i)
          ok = got[i].frame.get() == want[i]->frame.get();
        if (!ok)
          ++mismatches;
      }
      if (buf.size() != ref.buffered().size() || buf.newest_id() != id)
        ++mismatches;
      if (ref.all.size() > capacity && buf.size() == capacity)
        ++wraps;
    }
  }
  CHECK(mismatches == 0);
  // The run reached the cases it is meant to compare.
  CHECK(gaps > 1000);
  CHECK(clean > 1000);
  CHECK(exact_evicted > 50);
  CHECK(wraps > 1000);
}

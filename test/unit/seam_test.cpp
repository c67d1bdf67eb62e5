#include "core/seam.hpp"

#include "core/ring_buffer.hpp"
#include "core/sse.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

stored make(uint64_t id, uint64_t gap_below = 0) {
  update u{id, static_cast<int64_t>(id) * 1000, 97000.5};
  return stored{u, encode_update(u), 0, nullptr, gap_below};
}

// The gap event a live hole produces.
std::string gap_event(const std::string& requested, uint64_t oldest) {
  return "event: gap\ndata: {\"requested\":\"" + requested
         + "\",\"oldest\":" + std::to_string(oldest) + "}\n\n";
}

// Each frame by its `id:` value, "gap" for a gap event.
std::vector<std::string> names(const std::vector<frame_ptr>& frames) {
  std::vector<std::string> out;
  for (auto& f : frames)
    out.emplace_back(f->text().rfind("event: gap", 0) == 0
                         ? "gap"
                         : f->text().substr(4, f->text().find('\n') - 4));
  return out;
}

using strings = std::vector<std::string>;

history reply(std::vector<uint64_t> ids, uint64_t end_id, bool gap = false,
              std::optional<uint64_t> oldest = std::nullopt) {
  history h;
  for (auto id : ids)
    h.frames.push_back(make(id).frame);
  h.end_id = end_id;
  h.gap = gap;
  h.oldest = oldest;
  h.newest = end_id;
  return h;
}

// The same reply, from a buffer whose newest id is `newest`.
history reply_newest(std::vector<uint64_t> ids, uint64_t end_id,
                     uint64_t newest, bool gap = false,
                     std::optional<uint64_t> oldest = std::nullopt) {
  auto h = reply(std::move(ids), end_id, gap, oldest);
  h.newest = newest;
  return h;
}

resume_point after(uint64_t id) {
  return resume_point{resume_point::kind::after_id, id, 0, std::to_string(id)};
}

resume_point since(int64_t ms) {
  return resume_point{resume_point::kind::since, 0, ms, std::to_string(ms)};
}

} // namespace

TEST_CASE("a new seam holds live frames until the history arrives") {
  seam s{"3"};
  CHECK(s.holding());
  CHECK(s.held() == 0);
  CHECK(s.last_written() == 0);
  CHECK(s.on_live(make(6)) == nullptr);
  CHECK(s.on_live(make(7)) == nullptr);
  CHECK(s.held() == 2);
  CHECK(s.holding());
}

TEST_CASE("history is written, then the held frames after it") {
  seam s{"3"};
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(reply({4, 5}, 5));
  CHECK(names(out) == strings{"4", "5", "6", "7"});
  CHECK(!s.holding());
  CHECK(s.held() == 0);
  CHECK(s.last_written() == 7);
}

TEST_CASE("held frames the history already covers are dropped") {
  // The broadcaster forwarded 5 and 6 after the subscription but before its
  // ack, so the history reply carries them too.
  seam s{"3"};
  s.on_live(make(5));
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(reply({4, 5, 6}, 6));
  CHECK(names(out) == strings{"4", "5", "6", "7"});
  CHECK(s.last_written() == 7);
}

TEST_CASE("a held frame that arrived twice is written once") {
  seam s{"3"};
  s.on_live(make(6));
  s.on_live(make(6));
  s.on_live(make(7));
  s.on_live(make(7));
  CHECK(names(s.on_history(reply({}, 5))) == strings{"6", "7"});
}

TEST_CASE("after the history, live frames pass only when newer") {
  seam s{"3"};
  s.on_history(reply({4, 5}, 5));
  CHECK(s.last_written() == 5);
  CHECK(s.on_live(make(5)) == nullptr);
  CHECK(s.on_live(make(4)) == nullptr);
  auto six = make(6);
  auto out = s.on_live(six);
  REQUIRE(out);
  CHECK(out->get() == six.frame.get());
  CHECK(s.on_live(make(6)) == nullptr);
  CHECK(s.on_live(make(8)) != nullptr);
  CHECK(s.on_live(make(7)) == nullptr);
  CHECK(s.last_written() == 8);
  CHECK(s.held() == 0);
}

TEST_CASE("frames keep their identity through the seam") {
  seam s{""};
  auto held = make(6);
  s.on_live(held);
  auto h = reply({5}, 5);
  auto out = s.on_history(h);
  REQUIRE(out.size() == 2);
  CHECK(out[0].get() == h.frames[0].get());
  CHECK(out[1].get() == held.frame.get());
}

TEST_CASE("a gap event comes first, naming the request and the oldest id") {
  seam s{"1795718717123"};
  s.on_live(make(11));
  auto out = s.on_history(reply({9, 10}, 10, true, 9));
  CHECK(names(out) == strings{"gap", "9", "10", "11"});
  CHECK(out[0]->text()
        == "event: gap\n"
           "data: {\"requested\":\"1795718717123\",\"oldest\":9}\n\n");
}

TEST_CASE("a gap on an empty buffer has a null oldest") {
  seam s{"42"};
  auto out = s.on_history(reply({}, 0, true));
  REQUIRE(out.size() == 1);
  CHECK(out[0]->text()
        == "event: gap\ndata: {\"requested\":\"42\",\"oldest\":null}\n\n");
  CHECK(s.last_written() == 0);
  CHECK(s.on_live(make(1)) != nullptr);
}

TEST_CASE("a resume id newer than any known still releases live frames") {
  // The client asks after 99 but the server knows only up to 5: a gap, and
  // end_id stays at the seam so 6 and 7 are not swallowed.
  ring_buffer buf{10, 1h};
  for (uint64_t id = 1; id <= 5; ++id)
    REQUIRE(buf.push(make(id)));
  seam s{"99"};
  s.on_live(make(6));
  s.on_live(make(7));
  auto out = s.on_history(
      buf.query(resume_point{resume_point::kind::after_id, 99, 0, "99"}, 5));
  CHECK(names(out) == strings{"gap", "6", "7"});
  CHECK(out[0]->text()
        == "event: gap\ndata: {\"requested\":\"99\",\"oldest\":1}\n\n");
  CHECK(s.last_written() == 7);
  CHECK(s.on_live(make(8)) != nullptr);
}

TEST_CASE("a resume id the client has beyond the ack drops those frames") {
  // The broadcaster's ack (3) is older than the client's id (5): held 4 and
  // 5 are already with the client.
  seam s{"5"};
  s.on_live(make(4));
  s.on_live(make(5));
  s.on_live(make(6));
  auto out = s.on_history(reply({}, 5));
  CHECK(names(out) == strings{"6"});
  CHECK(s.last_written() == 6);
}

TEST_CASE("last written is the end id when nothing newer was held") {
  seam s{""};
  s.on_live(make(3));
  CHECK(s.on_history(reply({}, 7)).empty());
  CHECK(s.last_written() == 7);
  CHECK(s.on_live(make(7)) == nullptr);
  CHECK(s.on_live(make(8)) != nullptr);
}

TEST_CASE("a history without frames or held frames writes nothing") {
  seam s{""};
  CHECK(s.on_history(reply({}, 0)).empty());
  CHECK(!s.holding());
  CHECK(s.last_written() == 0);
}

TEST_CASE("every interleaving of history and live writes each id once") {
  // The broadcaster forwarded 1..upto before acking; live frames upto+1..N
  // reach the connection in order, and the history reply lands before,
  // between or after any of them. The client resumes after id 2.
  constexpr uint64_t n = 8;
  for (uint64_t upto = 2; upto <= 6; ++upto) {
    for (uint64_t live_before = 0; live_before <= n - upto; ++live_before) {
      ring_buffer buf{16, 1h};
      for (uint64_t id = 1; id <= upto; ++id)
        REQUIRE(buf.push(make(id)));
      seam s{"2"};
      std::vector<frame_ptr> written;
      auto live = [&](uint64_t id) {
        // The buffer stores each update before the broadcaster forwards it.
        auto st = make(id);
        REQUIRE(buf.push(st));
        if (auto f = s.on_live(st))
          written.push_back(*f);
      };
      uint64_t next = upto + 1;
      for (uint64_t i = 0; i < live_before; ++i)
        live(next++);
      auto h = buf.query(resume_point{resume_point::kind::after_id, 2, 0, "2"},
                         upto);
      for (auto& f : s.on_history(h))
        written.push_back(f);
      while (next <= n)
        live(next++);
      strings expected;
      for (uint64_t id = 3; id <= n; ++id)
        expected.push_back(std::to_string(id));
      CHECK(!h.gap);
      CHECK_MESSAGE(names(written) == expected, "upto ", upto, " live_before ",
                    live_before);
      CHECK(s.last_written() == n);
    }
  }
}

// -- holes (cluster mode) -----------------------------------------------------

TEST_CASE("a live frame after a hole is preceded by a gap event, once") {
  seam s{"3"};
  s.on_history(reply({4, 5}, 5));
  CHECK(!s.take_gap());
  auto nine = make(9, 7);
  auto out = s.on_live(nine);
  REQUIRE(out);
  CHECK(out->get() == nine.frame.get());
  auto gap = s.take_gap();
  REQUIRE(gap.get() != nullptr);
  CHECK(gap->text()
        == "event: gap\ndata: {\"requested\":\"5\",\"oldest\":9}\n\n");
  CHECK(!s.take_gap());
  CHECK(s.last_written() == 9);
  CHECK(s.on_live(make(10)) != nullptr);
  CHECK(!s.take_gap());
}

TEST_CASE("a live gap names the last id written, not the resume point") {
  seam s{"3"};
  s.on_history(reply({4, 5}, 5));
  REQUIRE(s.on_live(make(6)));
  REQUIRE(s.on_live(make(12, 10)));
  auto gap = s.take_gap();
  REQUIRE(gap.get() != nullptr);
  CHECK(gap->text() == gap_event("6", 12));
}

TEST_CASE("a live frame after a hole the client is past has no gap event") {
  // The client has 7 (from another node): the hole below 7 is not its loss.
  seam s{"7"};
  s.on_history(reply({}, 7));
  REQUIRE(s.on_live(make(9, 7)));
  CHECK(!s.take_gap());
  REQUIRE(s.on_live(make(11, 6)));
  CHECK(!s.take_gap());
  CHECK(s.last_written() == 11);
  // One above the last written is a gap again.
  REQUIRE(s.on_live(make(14, 12)));
  auto gap = s.take_gap();
  REQUIRE(gap.get() != nullptr);
  CHECK(gap->text() == gap_event("11", 14));
}

TEST_CASE("a live frame already written makes no gap event, hole or not") {
  seam s{"3"};
  s.on_history(reply({4, 5, 6}, 6));
  CHECK(s.on_live(make(6, 5)) == nullptr);
  CHECK(!s.take_gap());
  CHECK(s.on_live(make(5, 4)) == nullptr);
  CHECK(!s.take_gap());
  CHECK(s.last_written() == 6);
}

TEST_CASE("a held frame after a hole the history did not know gets a gap") {
  // The buffer answered with newest 6; 9 came after a hole found later.
  seam s{"3"};
  s.on_live(make(6));
  s.on_live(make(9, 7));
  s.on_live(make(10));
  auto out = s.on_history(reply_newest({4, 5}, 5, 6));
  CHECK(names(out) == strings{"4", "5", "6", "gap", "9", "10"});
  REQUIRE(out.size() == 6);
  CHECK(out[3]->text() == gap_event("6", 9));
  CHECK(!s.take_gap());
  CHECK(s.last_written() == 10);
}

TEST_CASE("a held frame after a hole found after a gapped history gets its "
          "own gap") {
  // The history's gap covers what was missing up to 6; the hole before 9
  // was found later and is a new loss.
  seam s{"1"};
  s.on_live(make(6));
  s.on_live(make(9, 7));
  auto out = s.on_history(reply_newest({4, 5}, 5, 6, true, 4));
  CHECK(names(out) == strings{"gap", "4", "5", "6", "gap", "9"});
  REQUIRE(out.size() == 6);
  CHECK(out[0]->text()
        == "event: gap\ndata: {\"requested\":\"1\",\"oldest\":4}\n\n");
  CHECK(out[4]->text() == gap_event("6", 9));
}

TEST_CASE("a held frame after a hole the history's gap covered gets no "
          "second gap") {
  // The buffer knew of the hole before 9 (newest 9) and answered with a gap.
  seam s{"1"};
  s.on_live(make(6));
  s.on_live(make(9, 7));
  s.on_live(make(10));
  auto out = s.on_history(reply_newest({4, 5}, 5, 9, true, 4));
  CHECK(names(out) == strings{"gap", "4", "5", "6", "9", "10"});
  REQUIRE(out.size() == 6);
  CHECK(out[0]->text()
        == "event: gap\ndata: {\"requested\":\"1\",\"oldest\":4}\n\n");
  CHECK(s.last_written() == 10);
  CHECK(!s.take_gap());
}

TEST_CASE("a held frame after a hole that the history replayed gets no gap") {
  seam s{"5"};
  s.on_live(make(9, 7));
  auto out = s.on_history(reply_newest({9}, 9, 9, true, 9));
  CHECK(names(out) == strings{"gap", "9"});
  CHECK(s.last_written() == 9);
}

TEST_CASE("a held frame after a hole the client is past gets no gap") {
  // The client resumes after 7, which it got from another node; the buffer
  // holds 1..5 and then 9 after a hole that skipped 6 and 7.
  ring_buffer buf{10, 1h};
  for (uint64_t id = 1; id <= 5; ++id)
    REQUIRE(buf.push(make(id), id - 1));
  REQUIRE(buf.push(make(9), 7));
  seam s{"7"};
  s.on_live(make(9, 7));
  auto h = buf.query(after(7), 5);
  CHECK(!h.gap);
  CHECK(h.end_id == 7);
  CHECK(names(s.on_history(h)) == strings{"9"});
}

TEST_CASE("every interleaving of history and live across a hole writes one "
          "gap and each id once") {
  // The log: 1..5, then 8 after a hole (6 and 7 lost), 9, 10. The client
  // resumes after 2. The broadcaster forwarded 1..upto before acking; the
  // history reply lands before, between or after the live frames.
  const std::vector<std::pair<uint64_t, uint64_t>> log{
      {1, 0}, {2, 1}, {3, 2}, {4, 3}, {5, 4}, {8, 6}, {9, 8}, {10, 9}};
  for (size_t acked = 2; acked <= log.size(); ++acked) {
    for (size_t live_before = 0; live_before <= log.size() - acked;
         ++live_before) {
      ring_buffer buf{16, 1h};
      seam s{"2"};
      std::vector<frame_ptr> written;
      size_t next = 0;
      auto store = [&]() -> stored {
        auto [id, prev] = log[next++];
        auto* st = buf.push(make(id), prev);
        REQUIRE(st != nullptr);
        return *st;
      };
      while (next < acked)
        store();
      auto upto = log[acked - 1].first;
      auto live = [&]() {
        auto st = store();
        if (auto f = s.on_live(st)) {
          if (auto gap = s.take_gap())
            written.push_back(gap);
          written.push_back(*f);
        }
      };
      for (size_t i = 0; i < live_before; ++i)
        live();
      auto h = buf.query(after(2), upto);
      auto known = buf.newest_id() >= 8;
      CHECK(h.gap == known);
      for (auto& f : s.on_history(h))
        written.push_back(f);
      while (next < log.size())
        live();
      auto expected = known ? strings{"gap", "3", "4", "5", "8", "9", "10"}
                            : strings{"3", "4", "5", "gap", "8", "9", "10"};
      CHECK_MESSAGE(names(written) == expected, "upto ", upto, " live_before ",
                    live_before);
      auto gap = std::find_if(written.begin(), written.end(), [](auto& f) {
        return f->text().rfind("event: gap", 0) == 0;
      });
      REQUIRE(gap != written.end());
      if (!known)
        CHECK((*gap)->text() == gap_event("5", 8));
      else
        CHECK((*gap)->text().rfind("event: gap\ndata: {\"requested\":\"2\",", 0)
              == 0);
      CHECK(s.last_written() == 10);
    }
  }
}

TEST_CASE("a since resume at the frame after a known hole gets no gap, "
          "whether or not the ack covered that frame") {
  // The buffer holds 1..5 and 9 (ts 9000) after a hole; a client asks for
  // every update since 9000: nothing it asked for is missing, and the buffer
  // says so (no gap). Whether the broadcaster had forwarded 9 before its ack
  // (a race) must not change what the client sees.
  for (uint64_t upto : {9, 5}) {
    ring_buffer buf{10, 1h};
    for (uint64_t id = 1; id <= 5; ++id)
      REQUIRE(buf.push(make(id), id - 1));
    auto* nine = buf.push(make(9), 7);
    REQUIRE(nine != nullptr);
    seam s{"9000"};
    if (upto < 9)
      s.on_live(*nine); // still on its way live: held
    auto h = buf.query(since(9000), upto);
    CHECK(!h.gap);
    CHECK_MESSAGE(names(s.on_history(h)) == strings{"9"}, "upto ", upto);
    CHECK(s.last_written() == 9);
  }
}

TEST_CASE("a latest frame, then a held frame after a known hole, gets a gap "
          "between them") {
  // No resume point: the client is sent 5, the latest the ack covers; 9
  // (stored after a hole, not yet forwarded) follows with a gap, as it would
  // live: the client's position is 5.
  ring_buffer buf{10, 1h};
  for (uint64_t id = 1; id <= 5; ++id)
    REQUIRE(buf.push(make(id), id - 1));
  auto* nine = buf.push(make(9), 7);
  REQUIRE(nine != nullptr);
  seam s{""};
  s.on_live(*nine);
  auto h = buf.query(resume_point{}, 5);
  CHECK(!h.gap);
  CHECK(h.newest == 9);
  auto out = s.on_history(h);
  CHECK(names(out) == strings{"5", "gap", "9"});
  REQUIRE(out.size() == 3);
  CHECK(out[1]->text() == gap_event("5", 9));
}

#include "actors/bus.hpp"
#include "actors/reader.hpp"
#include "cluster_fakes.hpp"
#include "core/sse.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

/// The real buffer and broadcaster fed by a reader over a fake log, and a
/// bus that only records what the reader tells it.
struct reader_fixture : core_fixture {
  std::shared_ptr<fake_cluster_log> redis
      = std::make_shared<fake_cluster_log>();
  std::shared_ptr<std::vector<uint64_t>> told
      = std::make_shared<std::vector<uint64_t>>();
  reader_actor reader_handle;

  explicit reader_fixture(size_t capacity = 100,
                          caf::timespan lag_wait = caf::timespan::zero())
      : core_fixture(capacity, lag_wait) {
    auto bus_mock = stop_at_end(sys->spawn(recording_bus, told));
    reader_handle = stop_at_end(sys->spawn(reader, redis, buf, bus_mock, clock,
                                           std::make_shared<fixed_random>(),
                                           stats, 2000ms));
    run();
  }

  /// A bus that records the newest entries it is told of.
  static bus_actor::behavior_type
  recording_bus(std::shared_ptr<std::vector<uint64_t>> told) {
    return {
        [](atom::publish, const update&) {
          FAIL_CHECK("the reader must not publish");
        },
        [](atom::poller, fetcher_actor) {},
        [](atom::tick) {},
        [](atom::lease, int64_t, const lease_reply&) {},
        [](atom::appended, const append_reply&) {},
        [told](atom::ingest, const log_entry& e) {
          told->push_back(e.u.id);
        },
        [](atom::leader) -> std::string {
          return {};
        },
        [](atom::release) -> bool {
          return false;
        },
        [](atom::release, const release_reply&) {},
        [](atom::ping) -> uint64_t {
          return 0;
        },
    };
  }

  /// Log entry n (update n of the core fixture) after entry `prev` (0:
  /// none).
  static log_entry entry(int n, int prev) {
    return log_entry{make_update(n, 1000 + n), prev == 0 ? 0 : id(prev),
                     start_ms + n};
  }

  void answer(std::vector<log_entry> es) {
    redis->answer_read(std::move(es));
    run();
  }

  bool ready() const { return stats->cluster.ready.load(); }
};

std::string gap(const std::string& requested, std::optional<uint64_t> oldest) {
  return std::string(encode_gap(requested, oldest)->text());
}

} // namespace

TEST_CASE("the reader backfills without blocking, becomes ready on a short "
          "read, then waits in blocking reads from the newest id") {
  reader_fixture f;
  REQUIRE_EQ(f.redis->reads.size(), 1u);
  CHECK_EQ(f.redis->reads.front().after, 0u);
  CHECK_FALSE(f.redis->reads.front().block.has_value());
  CHECK_FALSE(f.ready());
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  CHECK(f.ready());
  CHECK_EQ(f.stats->cluster.backfilled.load(), 2u);
  CHECK_EQ(f.stats->cluster.redis_up.load(), 1);
  REQUIRE_EQ(f.redis->reads.size(), 1u);
  CHECK_EQ(f.redis->reads.front().after, f.id(2));
  CHECK_EQ(f.redis->reads.front().block, std::optional{2000ms});
  f.answer({reader_fixture::entry(3, 2)});
  CHECK_EQ(f.stats->cluster.ingested.load(), 3u);
  CHECK_EQ(f.stats->cluster.backfilled.load(), 2u);
  CHECK_EQ(*f.told, (std::vector<uint64_t>{f.id(2), f.id(3)}));
  auto [c, sink] = f.connect(core_fixture::after(f.id(1)));
  CHECK_EQ(sink->ids(), f.ids(2, 3));
}

TEST_CASE("a full read keeps backfilling; the node is ready only after a "
          "short one") {
  reader_fixture f;
  std::vector<log_entry> full;
  for (int n = 1; n <= 500; ++n)
    full.push_back(reader_fixture::entry(n, n - 1));
  f.answer(full);
  CHECK_FALSE(f.ready());
  CHECK_FALSE(f.redis->reads.front().block.has_value());
  f.answer({});
  CHECK(f.ready());
  CHECK(f.redis->reads.front().block.has_value());
}

TEST_CASE("a hole in the live feed: a connected client gets exactly one gap "
          "event before the entry after it") {
  reader_fixture f;
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  auto [c, sink] = f.connect(resume_point{}); // latest (2), then live
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(2)});
  // Entry 3 was lost (trimmed before this node read it, or Redis lost it).
  f.answer({reader_fixture::entry(4, 3), reader_fixture::entry(5, 4)});
  CHECK_EQ(f.stats->cluster.holes.load(), 1u);
  REQUIRE_EQ(sink->frames.size(), 4u);
  CHECK_EQ(sink->frames[1], gap(std::to_string(f.id(2)), f.id(4)));
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(2), f.id(4), f.id(5)}));
  CHECK_EQ(sink->count(gap(std::to_string(f.id(2)), f.id(4))), 1u);
}

TEST_CASE("a resume across a hole gets one gap event, then every entry; a "
          "resume after it none") {
  reader_fixture f;
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1),
            reader_fixture::entry(4, 3), reader_fixture::entry(5, 4)});
  auto [c, sink] = f.connect(core_fixture::after(f.id(1)));
  REQUIRE_EQ(sink->frames.size(), 4u);
  CHECK_EQ(sink->frames[0], gap(std::to_string(f.id(1)), f.id(2)));
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(2), f.id(4), f.id(5)}));
  // A client that had entry 3 from another node misses nothing.
  auto [c2, sink2] = f.connect(core_fixture::after(f.id(3)));
  CHECK_EQ(sink2->frames.size(), 2u);
  CHECK_EQ(sink2->ids(), (std::vector<uint64_t>{f.id(4), f.id(5)}));
  f.answer({reader_fixture::entry(6, 5)});
  CHECK_EQ(sink->ids().back(), f.id(6));
  CHECK_EQ(sink->count(gap(std::to_string(f.id(1)), f.id(2))), 1u);
}

TEST_CASE("Redis restarted empty: the log starts again at prev 0 above the "
          "floor, and connected clients get one gap") {
  reader_fixture f;
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  auto [c, sink] = f.connect(resume_point{});
  f.answer({reader_fixture::entry(10, 0), reader_fixture::entry(11, 10)});
  CHECK_EQ(f.stats->cluster.holes.load(), 1u);
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(2), f.id(10), f.id(11)}));
  CHECK_EQ(sink->count(gap(std::to_string(f.id(2)), f.id(10))), 1u);
  CHECK_EQ(sink->frames.size(), 4u);
}

TEST_CASE("a failed read: redis_up 0, retried after 250 ms as a backfill, "
          "then 500 ms") {
  reader_fixture f;
  f.answer({reader_fixture::entry(1, 0)});
  f.redis->fail_read(log_failure::timeout);
  f.run();
  CHECK_EQ(f.stats->cluster.redis_up.load(), 0);
  CHECK_EQ(f.stats->cluster.redis_errors[3].load(), 1u); // read
  CHECK(f.redis->reads.empty());
  f.advance(249ms);
  CHECK(f.redis->reads.empty());
  f.advance(1ms);
  REQUIRE_EQ(f.redis->reads.size(), 1u);
  CHECK_EQ(f.redis->reads.front().after, f.id(1));
  CHECK_FALSE(f.redis->reads.front().block.has_value());
  f.redis->fail_read(log_failure::connect);
  f.run();
  CHECK_EQ(f.stats->cluster.redis_errors[0].load(), 1u); // connect
  f.advance(499ms);
  CHECK(f.redis->reads.empty());
  f.advance(1ms);
  f.answer({reader_fixture::entry(2, 1)});
  CHECK_EQ(f.stats->cluster.redis_up.load(), 1);
  CHECK_EQ(f.stats->cluster.backfilled.load(), 2u); // 1 at start, 2 after
  CHECK(f.redis->reads.front().block.has_value());
}

TEST_CASE("malformed entries are counted and read past, never again") {
  reader_fixture f;
  auto& call = f.redis->reads.front();
  read_reply r;
  r.entries = {reader_fixture::entry(1, 0)};
  r.malformed = 1;
  r.last_id = f.id(2); // entry 2 could not be decoded
  call.done(r);
  f.redis->reads.pop_front();
  f.run();
  CHECK_EQ(f.stats->cluster.redis_errors[4].load(), 1u); // decode
  CHECK_EQ(f.redis->reads.front().after, f.id(2));
  f.answer({reader_fixture::entry(3, 2)}); // its prev is the bad entry
  CHECK_EQ(f.stats->cluster.holes.load(), 1u);
}

TEST_CASE("a lagging node waits for the log to reach a resume id, then "
          "resumes without a gap") {
  reader_fixture f{100, caf::timespan{1s}};
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  // The client got entry 3 from a node that is ahead.
  auto [c, sink] = f.connect(core_fixture::after(f.id(3)));
  CHECK(sink->frames.empty());
  f.advance(500ms);
  CHECK(sink->frames.empty());
  f.answer({reader_fixture::entry(3, 2), reader_fixture::entry(4, 3)});
  CHECK_EQ(sink->frames.size(), 1u);
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(4)});
  f.advance(1s); // the wait's timer fires late: nothing more
  CHECK_EQ(sink->frames.size(), 1u);
}

TEST_CASE("a lagging node whose log never reaches the resume id reports a "
          "gap after one interval, then streams live") {
  reader_fixture f{100, caf::timespan{1s}};
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  auto [c, sink] = f.connect(core_fixture::after(f.id(9)));
  f.advance(999ms);
  CHECK(sink->frames.empty());
  f.advance(1ms);
  REQUIRE_EQ(sink->frames.size(), 1u);
  CHECK_EQ(sink->frames[0], gap(std::to_string(f.id(9)), f.id(1)));
  // The node reads what the client already has (up to 9), then more: the
  // client's copies are not sent again.
  std::vector<log_entry> late;
  for (int n = 3; n <= 10; ++n)
    late.push_back(reader_fixture::entry(n, n - 1));
  f.answer(late);
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(10)});
  CHECK_EQ(sink->frames.size(), 2u);
}

TEST_CASE("a resume id from the future filters nothing after the wait") {
  reader_fixture f{100, caf::timespan{1s}};
  f.answer({reader_fixture::entry(1, 0), reader_fixture::entry(2, 1)});
  auto future = static_cast<uint64_t>(start_ms) + 3'600'000;
  auto [c, sink] = f.connect(core_fixture::after(future));
  f.advance(1s);
  REQUIRE_EQ(sink->frames.size(), 1u);
  CHECK_EQ(sink->frames[0], gap(std::to_string(future), f.id(1)));
  f.answer({reader_fixture::entry(3, 2)});
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(3)});
}

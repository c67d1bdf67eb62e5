#include "actors/bus.hpp"
#include "actors/fetcher.hpp"
#include "cluster_fakes.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

// Lease 3 s, interval 1 s: requests every second (min(ttl / 3, interval)),
// a leader's deadline 2.25 s after it sent its last good request. The log is
// trimmed to 5 entries and 90 s, not bus_options' defaults.
struct bus_fixture : fixture {
  std::shared_ptr<fake_upstream> upstream = std::make_shared<fake_upstream>();
  std::shared_ptr<fake_cluster_log> redis
      = std::make_shared<fake_cluster_log>();
  std::shared_ptr<fixed_random> rng = std::make_shared<fixed_random>();
  bus_actor bus_handle;
  fetcher_actor fetcher_handle;

  /// @param name_fetcher whether to tell the bus its fetcher at once (the
  /// wiring does it right after spawning both).
  explicit bus_fixture(bool name_fetcher = true) {
    bus_options o;
    o.node = "a";
    o.lease_ttl = 3s;
    o.interval = 1s;
    o.max_len = 5;
    o.ttl = 90s;
    bus_handle = stop_at_end(sys->spawn(bus, redis, clock, stats, o));
    fetcher_handle = stop_at_end(
        sys->spawn(fetcher, upstream, bus_handle, clock, rng, "BTC-USD",
                   caf::timespan{1s}, stats, false, update{}));
    if (name_fetcher)
      caf::anon_send(bus_handle, atom::poller_v, fetcher_handle);
    run();
  }

  /// Grants the pending lease request to this node.
  void grant(uint64_t token) {
    redis->answer_lease("a", token);
    run();
  }

  int64_t leader() const { return stats->cluster.leader.load(); }
};

} // namespace

TEST_CASE("a follower does not poll; the lease granted makes it poll at "
          "once, renewed it keeps polling") {
  bus_fixture f;
  REQUIRE_EQ(f.redis->leases.size(), 1u);
  CHECK_EQ(f.redis->leases.front().token, 0u); // asks, holds nothing
  f.advance(500ms);
  CHECK_EQ(f.upstream->requests, 0u);
  f.grant(7);
  CHECK_EQ(f.leader(), 1);
  CHECK_EQ(f.stats->cluster.lease_acquisitions.load(), 1u);
  CHECK_EQ(f.upstream->requests, 1u);
  CHECK(f.upstream->answer_price(100));
  f.run();
  // The update goes to the log with the lease's token, nowhere else.
  REQUIRE_EQ(f.redis->appends.size(), 1u);
  CHECK_EQ(f.redis->appends.front().token, 7u);
  CHECK_EQ(f.redis->appends.front().node, "a");
  f.redis->answer_append(append_reply{});
  f.run();
  CHECK_EQ(f.stats->cluster.appends[0].load(), 1u);
  for (int i = 0; i < 3; ++i) {
    f.advance(1s);
    REQUIRE_EQ(f.redis->leases.size(), 1u);
    CHECK_EQ(f.redis->leases.front().token, 7u); // a renewal
    f.grant(7);
    CHECK(f.upstream->answer_price(101 + i));
    f.run();
  }
  CHECK_EQ(f.upstream->requests, 4u);
  CHECK_EQ(f.stats->cluster.lease_acquisitions.load(), 1u);
  CHECK_EQ(f.leader(), 1);
}

TEST_CASE("a lease granted before the bus knows its fetcher starts the "
          "fetcher when it learns it") {
  bus_fixture f{false};
  f.grant(1);
  CHECK_EQ(f.leader(), 1);
  CHECK_EQ(f.upstream->requests, 0u);
  caf::anon_send(f.bus_handle, atom::poller_v, f.fetcher_handle);
  f.run();
  CHECK_EQ(f.upstream->requests, 1u);
}

TEST_CASE("the lease held by another node stops polling; granted again, "
          "polling resumes") {
  bus_fixture f;
  f.grant(1);
  CHECK(f.upstream->answer_price(100));
  f.advance(1s);
  CHECK(f.upstream->answer_price(101));
  f.redis->answer_lease("b", 2);
  f.run();
  CHECK_EQ(f.leader(), 0);
  CHECK_EQ(f.stats->cluster.lease_losses.load(), 1u);
  auto before = f.upstream->requests;
  f.advance(1s);
  f.redis->answer_lease("b", 2);
  f.advance(1s);
  CHECK_EQ(f.upstream->requests, before);
  CHECK_EQ(f.redis->leases.front().token, 0u); // nothing to renew
  auto leader = ask<std::string>(f, f.bus_handle, atom::leader_v);
  CHECK_EQ(leader, std::optional<std::string>{"b"});
  f.grant(3);
  CHECK_EQ(f.leader(), 1);
  CHECK_EQ(f.stats->cluster.lease_acquisitions.load(), 2u);
  CHECK_EQ(f.upstream->requests, before + 1);
}

TEST_CASE("a leader that cannot renew stops polling before its lease can "
          "have expired in Redis") {
  bus_fixture f;
  f.grant(1); // sent at t = 0: Redis keeps it until t >= 3 s
  CHECK_EQ(f.upstream->requests, 1u);
  CHECK(f.upstream->answer_price(100));
  for (int i = 0; i < 2; ++i) { // t = 1 s, 2 s: Redis does not answer
    f.advance(1s);
    f.redis->fail_lease();
    CHECK(f.upstream->answer_price(101 + i));
    f.run();
  }
  CHECK_EQ(f.upstream->requests, 3u); // polled at 0, 1 and 2 s
  CHECK_EQ(f.leader(), 1);
  f.advance(1s); // t = 3 s: past the deadline (2.25 s), no poll
  CHECK_EQ(f.upstream->requests, 3u);
  CHECK_EQ(f.leader(), 0);
  CHECK_EQ(f.stats->cluster.lease_losses.load(), 1u);
  // The token is kept: a renewal that Redis still honours leads again.
  REQUIRE_FALSE(f.redis->leases.empty());
  CHECK_EQ(f.redis->leases.back().token, 1u);
}

TEST_CASE("the fetcher does not start a request past the lease's deadline "
          "even before the bus notices") {
  bus_fixture f;
  f.grant(1);
  CHECK(f.upstream->answer_price(100));
  f.advance(1s);
  f.redis->fail_lease();
  CHECK(f.upstream->answer_price(101));
  // A paused process wakes at t = 3 s (past the 2.25 s deadline) with the
  // fetcher's and the bus's timers due; the fetcher happens to run first.
  f.clock->now += 2000;
  f.sched->advance_time(2s);
  while (f.sched->prioritize(f.fetcher_handle))
    f.sched->run_once(); // the fetcher first, the bus not yet
  CHECK_EQ(f.upstream->requests, 2u);
  CHECK_EQ(f.leader(), 1); // the bus has not run
  f.run();
  CHECK_EQ(f.leader(), 0);
}

TEST_CASE("an append refused by the fence stops polling at once") {
  bus_fixture f;
  f.grant(1);
  CHECK(f.upstream->answer_price(100));
  f.run();
  append_reply fenced;
  fenced.fenced = true;
  f.redis->answer_append(fenced);
  f.run();
  CHECK_EQ(f.stats->cluster.appends[1].load(), 1u);
  CHECK_EQ(f.leader(), 0);
  CHECK_EQ(f.stats->cluster.lease_losses.load(), 1u);
  f.advance(1s);
  CHECK_EQ(f.upstream->requests, 1u);
  CHECK_EQ(f.redis->leases.back().token, 0u);
}

TEST_CASE("appends carry a floor above the newest entry read, and a new "
          "leader's first poll waits one interval after it") {
  bus_fixture f;
  // The reader saw an entry appended 200 ms ago by another leader, with an
  // id ahead of this node's clock.
  log_entry newest{update{uint64_t(start_ms) + 5000, start_ms - 200, 99}, 0,
                   start_ms - 200};
  caf::anon_send(f.bus_handle, atom::ingest_v, newest);
  f.run();
  f.grant(1);
  CHECK_EQ(f.upstream->requests, 0u);
  f.advance(799ms);
  CHECK_EQ(f.upstream->requests, 0u);
  f.advance(1ms);
  CHECK_EQ(f.upstream->requests, 1u);
  CHECK(f.upstream->answer_price(100));
  f.run();
  REQUIRE_EQ(f.redis->appends.size(), 1u);
  CHECK_EQ(f.redis->appends.front().floor, uint64_t(start_ms) + 5001);
}

TEST_CASE("every append carries the log's trimming from the bus options") {
  bus_fixture f;
  f.grant(1);
  for (int i = 0; i < 2; ++i) {
    CHECK(f.upstream->answer_price(100 + i));
    f.run();
    REQUIRE_EQ(f.redis->appends.size(), 1u);
    auto c = f.redis->answer_append(append_reply{});
    CHECK_EQ(c.max_len, 5u);
    CHECK(c.ttl == 90s);
    f.run();
    f.advance(1s);
    f.grant(1);
  }
  CHECK_EQ(f.stats->cluster.appends[0].load(), 2u);
}

TEST_CASE("append failures are counted by operation, and nothing is "
          "retried") {
  bus_fixture f;
  f.grant(1);
  CHECK(f.upstream->answer_price(100));
  f.run();
  append_reply timeout;
  timeout.failure = log_failure::timeout;
  timeout.error = "timeout";
  f.redis->answer_append(timeout);
  f.run();
  CHECK_EQ(f.stats->cluster.appends[2].load(), 1u);
  CHECK_EQ(f.stats->cluster.redis_errors[2].load(), 1u); // append
  CHECK(f.redis->appends.empty());
  CHECK_EQ(f.leader(), 1);
}

TEST_CASE("a release for shutdown stops polling, deletes the lease with its "
          "token, and never asks for it again") {
  bus_fixture f;
  f.grant(7);
  CHECK(f.upstream->answer_price(100));
  f.run();
  f.redis->answer_append(append_reply{});
  auto released = std::make_shared<std::optional<bool>>();
  f.sys->spawn(
      [h = f.bus_handle](caf::event_based_actor* self,
                         std::shared_ptr<std::optional<bool>> res) {
        self->request(h, std::chrono::seconds{10}, atom::release_v)
            .then([res](bool r) {
              *res = r;
            });
      },
      released);
  f.run();
  CHECK_EQ(f.leader(), 0);
  CHECK_EQ(f.stats->cluster.lease_losses.load(), 0u); // stepped down, not lost
  REQUIRE_EQ(f.redis->releases.size(), 1u);
  CHECK_EQ(f.redis->releases.front().token, 7u);
  CHECK_EQ(f.redis->releases.front().node, "a");
  CHECK_FALSE(released->has_value()); // not before Redis answers
  release_reply r;
  r.released = true;
  f.redis->answer_release(r);
  f.run();
  CHECK_EQ(*released, std::optional<bool>{true});
  // No poll and no lease request afterwards, however long it runs.
  auto before = f.upstream->requests;
  f.advance(5s);
  CHECK_EQ(f.upstream->requests, before);
  CHECK(f.redis->leases.empty());
  // A second release has nothing to do.
  CHECK_EQ(ask<bool>(f, f.bus_handle, atom::release_v),
           std::optional<bool>{false});
  CHECK(f.redis->releases.empty());
}

TEST_CASE("a follower's release sends nothing to Redis and answers false") {
  bus_fixture f;
  f.redis->answer_lease("b", 3);
  f.run();
  CHECK_EQ(ask<bool>(f, f.bus_handle, atom::release_v),
           std::optional<bool>{false});
  CHECK(f.redis->releases.empty());
  f.advance(3s);
  CHECK(f.redis->leases.empty());
}

TEST_CASE("a renewal answered after the release does not make the node lead "
          "again") {
  bus_fixture f;
  f.grant(7);
  f.advance(1s); // a renewal is in flight
  REQUIRE_EQ(f.redis->leases.size(), 1u);
  CHECK_EQ(f.leader(), 1);
  caf::anon_send(f.bus_handle, atom::release_v);
  f.run();
  CHECK_EQ(f.leader(), 0);
  REQUIRE_EQ(f.redis->releases.size(), 1u);
  auto before = f.upstream->requests;
  f.grant(7); // Redis renewed it before it ran the release
  CHECK_EQ(f.leader(), 0);
  f.advance(2s);
  CHECK_EQ(f.upstream->requests, before);
  CHECK(f.redis->leases.empty());
}

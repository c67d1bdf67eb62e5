#include "actors/broadcaster.hpp"

#include "core/sse.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

struct received {
  std::vector<uint64_t> ids;
  size_t heartbeats = 0;
  /// The reasons of every `ended`, and how many ids had come before it.
  std::vector<std::pair<caf::error, size_t>> ended;
};

/// A connection that records what the broadcaster sends it.
connection_actor::behavior_type mock_connection(std::shared_ptr<received> log) {
  return {
      [log](atom::live, const stored& s) {
        log->ids.push_back(s.u.id);
      },
      [log](atom::heartbeat) {
        ++log->heartbeats;
      },
      [](atom::session, session_state) {
        FAIL_CHECK("the broadcaster never sends session events");
      },
      [](atom::retire) {
        FAIL_CHECK("the broadcaster never retires a stream");
      },
      [log](atom::ended, const caf::error& reason) {
        log->ended.emplace_back(reason, log->ids.size());
      },
  };
}

struct broadcaster_fixture : fixture {
  broadcaster_actor b;

  broadcaster_fixture() {
    b = stop_at_end(sys->spawn(broadcaster, caf::timespan{15s}, stats));
    run();
  }

  /// Spawns a mock connection and subscribes it; returns the subscribe reply.
  std::pair<connection_actor, uint64_t>
  subscribe(std::shared_ptr<received> log) {
    auto c = stop_at_end(sys->spawn(mock_connection, log));
    auto upto = ask<uint64_t>(*this, b, atom::subscribe_v, c);
    REQUIRE(upto);
    return {c, *upto};
  }

  /// The broadcaster's state, read between steps.
  broadcaster_state& state() {
    auto* impl
        = dynamic_cast<broadcaster_actor::stateful_pointer<broadcaster_state>>(
            caf::actor_cast<caf::abstract_actor*>(b));
    REQUIRE(impl != nullptr);
    return impl->state;
  }

  void publish(int64_t offset_ms) {
    auto u = make_update(offset_ms, 1);
    caf::anon_send(b, atom::publish_v, stored{u, encode_update(u), 0, nullptr});
    run();
  }
};

} // namespace

TEST_CASE("the broadcaster forwards every update to every subscriber and "
          "acks with the last id forwarded") {
  broadcaster_fixture f;
  auto a = std::make_shared<received>();
  auto [ca, upto_a] = f.subscribe(a);
  CHECK_EQ(upto_a, 0u);
  f.publish(0);
  auto b = std::make_shared<received>();
  auto [cb, upto_b] = f.subscribe(b);
  CHECK_EQ(upto_b, static_cast<uint64_t>(start_ms));
  f.publish(5000);
  CHECK_EQ(a->ids, std::vector<uint64_t>{uint64_t(start_ms),
                                         uint64_t(start_ms + 5000)});
  CHECK_EQ(b->ids, std::vector<uint64_t>{uint64_t(start_ms + 5000)});
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 2u);
}

TEST_CASE("the broadcaster forgets a connection that died") {
  broadcaster_fixture f;
  auto a = std::make_shared<received>();
  auto b = std::make_shared<received>();
  auto [ca, ua] = f.subscribe(a);
  auto [cb, ub] = f.subscribe(b);
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 2u);
  caf::anon_send_exit(ca, caf::exit_reason::user_shutdown);
  f.run();
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 1u);
  f.publish(0);
  CHECK(a->ids.empty());
  CHECK_EQ(b->ids.size(), 1u);
}

TEST_CASE("the broadcaster's end reaches every subscriber, with its reason, "
          "after the updates sent before") {
  broadcaster_fixture f;
  auto a = std::make_shared<received>();
  auto b = std::make_shared<received>();
  auto [ca, ua] = f.subscribe(a);
  auto [cb, ub] = f.subscribe(b);
  auto u = make_update(0, 1);
  caf::anon_send(f.b, atom::publish_v, stored{u, encode_update(u), 0, nullptr});
  f.step(f.b); // the update goes out; neither subscriber has run yet
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.step(f.b);
  f.run();
  for (auto* r : {a.get(), b.get()}) {
    REQUIRE_EQ(r->ended.size(), 1u);
    CHECK(r->ended[0].first == caf::exit_reason::user_shutdown);
    CHECK_EQ(r->ended[0].second, 1u); // after the update
  }
}

TEST_CASE("one heartbeat goes to everybody after a silence, none while "
          "updates flow") {
  broadcaster_fixture f;
  auto a = std::make_shared<received>();
  auto b = std::make_shared<received>();
  f.subscribe(a);
  f.subscribe(b);
  f.advance(14999ms);
  CHECK_EQ(a->heartbeats, 0u);
  f.advance(1ms); // 15 s of silence
  CHECK_EQ(a->heartbeats, 1u);
  CHECK_EQ(b->heartbeats, 1u);
  // Updates every 5 s for a minute: busy, so no heartbeat.
  for (int i = 1; i <= 12; ++i) {
    f.advance(5s);
    f.publish(i * 5000);
  }
  CHECK_EQ(a->heartbeats, 1u);
  // Then silence again: exactly one heartbeat 15 s after the last update.
  f.advance(14999ms);
  CHECK_EQ(a->heartbeats, 1u);
  f.advance(1ms);
  CHECK_EQ(a->heartbeats, 2u);
  f.advance(15s);
  CHECK_EQ(a->heartbeats, 3u);
}

TEST_CASE("beyond one shard: every subscriber gets every update once and in "
          "order, a dead one's place is taken, heartbeats and the end reach "
          "all") {
  broadcaster_fixture f;
  constexpr size_t first = 2 * subscribers_per_shard + 5; // three shards
  std::vector<std::shared_ptr<received>> logs;
  std::vector<connection_actor> conns;
  auto add = [&] {
    logs.push_back(std::make_shared<received>());
    conns.push_back(f.subscribe(logs.back()).first);
  };
  for (size_t i = 0; i < first; ++i)
    add();
  f.publish(0);
  // Three of the first shard and one of the last end.
  for (size_t i : {size_t{0}, size_t{1}, size_t{2}, first - 1})
    caf::anon_send_exit(conns[i], caf::exit_reason::user_shutdown);
  f.run();
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), first - 4);
  for (int i = 0; i < 5; ++i) // into their places, and one more
    add();
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), first + 1);
  // The first three into the first shard's places, the others after them.
  CHECK_EQ(f.state().fill, std::vector<size_t>{subscribers_per_shard,
                                               subscribers_per_shard, 6});
  f.publish(5000);
  f.publish(10000);
  const std::vector<uint64_t> all{uint64_t(start_ms), uint64_t(start_ms + 5000),
                                  uint64_t(start_ms + 10000)};
  const std::vector<uint64_t> later(all.begin() + 1, all.end());
  const std::vector<uint64_t> before(all.begin(), all.begin() + 1);
  for (size_t i = 0; i < logs.size(); ++i) {
    bool dead = i < 3 || i == first - 1;
    CAPTURE(i);
    CHECK_EQ(logs[i]->ids, dead ? before : i >= first ? later : all);
  }
  f.advance(15s); // silence: one heartbeat each
  for (size_t i = 0; i < logs.size(); ++i) {
    bool dead = i < 3 || i == first - 1;
    CAPTURE(i);
    CHECK_EQ(logs[i]->heartbeats, dead ? 0u : 1u);
  }
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.run();
  for (size_t i = 0; i < logs.size(); ++i) {
    bool dead = i < 3 || i == first - 1;
    CAPTURE(i);
    if (dead) {
      CHECK(logs[i]->ended.empty());
      continue;
    }
    REQUIRE_EQ(logs[i]->ended.size(), 1u);
    CHECK(logs[i]->ended[0].first == caf::exit_reason::user_shutdown);
    CHECK_EQ(logs[i]->ended[0].second, logs[i]->ids.size());
  }
}

TEST_CASE("a shard whose last subscriber left ends, the next subscriber gets "
          "a new one, and shards are not counted among the running actors") {
  broadcaster_fixture f;
  auto& shards = *f.state().shards;
  auto running = f.sys->registry().running();
  auto a = std::make_shared<received>();
  auto ca = f.subscribe(a).first;
  CHECK_EQ(f.sys->registry().running(), running + 1); // the connection only
  REQUIRE_EQ(shards.size(), 1u);
  REQUIRE(shards[0]);
  caf::actor_addr first = shards[0].address(); // weak: does not keep it
  caf::anon_send_exit(ca, caf::exit_reason::user_shutdown);
  f.run();
  CHECK_FALSE(shards[0]);
  CHECK_FALSE(caf::actor_cast<caf::strong_actor_ptr>(first)); // gone
  auto b = std::make_shared<received>();
  f.subscribe(b);
  REQUIRE_EQ(shards.size(), 1u); // the same place, a new shard
  REQUIRE(shards[0]);
  CHECK(shards[0].address() != first);
  f.publish(0);
  CHECK(a->ids.empty());
  CHECK_EQ(b->ids.size(), 1u);
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 1u); // still there
}

#include "actors/buffer.hpp"
#include "actors/service_port.hpp"

#include "core/sse.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

struct forwarded {
  std::vector<stored> items;
};

/// A broadcaster that records what the buffer publishes.
broadcaster_actor::behavior_type
mock_broadcaster(std::shared_ptr<forwarded> log) {
  return {
      [log](atom::publish, const stored& s) {
        log->items.push_back(s);
      },
      [](atom::subscribe, const connection_actor&) -> uint64_t {
        FAIL_CHECK("the buffer must not subscribe");
        return 0;
      },
      [](atom::heartbeat) {
        FAIL_CHECK("the buffer sends no heartbeat");
      },
      [](atom::ping) -> uint64_t {
        FAIL_CHECK("the buffer must not ping");
        return 0;
      },
  };
}

struct buffer_fixture : fixture {
  std::shared_ptr<forwarded> log = std::make_shared<forwarded>();
  buffer_actor buf;

  buffer_fixture(size_t capacity, std::chrono::milliseconds ttl) {
    auto b = stop_at_end(sys->spawn(mock_broadcaster, log));
    buf = stop_at_end(sys->spawn(buffer, capacity, ttl, b, clock, stats,
                                 caf::timespan::zero()));
    run();
  }

  void publish(const update& u) {
    caf::anon_send(buf, atom::publish_v, u);
    run();
  }
};

resume_point after(uint64_t id) {
  resume_point r;
  r.what = resume_point::kind::after_id;
  r.id = id;
  r.given = std::to_string(id);
  return r;
}

} // namespace

TEST_CASE("the buffer encodes each update once and replays the very bytes "
          "it published") {
  buffer_fixture f{10, 1h};
  auto u = make_update(0, 97123.45);
  f.publish(u);
  REQUIRE_EQ(f.log->items.size(), 1u);
  auto& s = f.log->items[0];
  CHECK(s.u == u);
  CHECK_EQ(s.frame->text(), "id: 1764182717000\ndata: "
                            "{\"timestamp\":\"2025-11-26T18:45:17.000Z\","
                            "\"price\":97123.45}\n\n");
  auto h = ask<history>(f, f.buf, atom::history_v, after(u.id - 1), u.id);
  REQUIRE(h);
  REQUIRE_EQ(h->frames.size(), 1u);
  // Shared, not copied: the same object serves live fan-out and replay.
  CHECK_EQ(h->frames[0].get(), s.frame.get());
}

TEST_CASE("entries older than the TTL leave the history; the latest price "
          "stays known") {
  buffer_fixture f{10, 10s};
  f.publish(make_update(0, 1));
  f.publish(make_update(5000, 2));
  using prices = std::vector<update>;
  auto all = std::optional<int64_t>{};
  f.clock->now = start_ms + 12'000; // the first is 12 s old, the second 7 s
  auto buffered = ask<prices>(f, f.buf, atom::updates_v, all);
  REQUIRE(buffered);
  REQUIRE_EQ(buffered->size(), 1u);
  CHECK_EQ(buffered->front().price, 2);
  CHECK_EQ(ask<uint64_t>(f, f.buf, atom::ping_v), 1u);
  f.clock->now = start_ms + 16'000;
  buffered = ask<prices>(f, f.buf, atom::updates_v, all);
  REQUIRE(buffered);
  CHECK(buffered->empty());
  // The last known price is still the latest (readiness reports it stale).
  auto latest = ask<std::optional<update>>(f, f.buf, atom::latest_v);
  REQUIRE(latest);
  REQUIRE(latest->has_value());
  CHECK_EQ((*latest)->price, 2);
  // A client that had the first update missed the second: a gap.
  auto h = ask<history>(f, f.buf, atom::history_v,
                        after(static_cast<uint64_t>(start_ms)),
                        static_cast<uint64_t>(start_ms + 5000));
  REQUIRE(h);
  CHECK(h->frames.empty());
  CHECK(h->gap);
  CHECK_FALSE(h->oldest.has_value());
}

TEST_CASE("updates since a time are the buffered ones at or after it, oldest "
          "first") {
  buffer_fixture f{10, 1h};
  for (int i = 0; i < 4; ++i)
    f.publish(make_update(i * 1000, i));
  auto since = ask<std::vector<update>>(
      f, f.buf, atom::updates_v, std::optional<int64_t>{start_ms + 1000});
  REQUIRE(since);
  REQUIRE_EQ(since->size(), 3u);
  CHECK_EQ(since->front().ts_ms, start_ms + 1000);
  CHECK_EQ(since->back().ts_ms, start_ms + 3000);
  auto none = ask<std::optional<update>>(f, f.buf, atom::latest_v);
  REQUIRE(none);
  CHECK_EQ((*none)->ts_ms, start_ms + 3000);
}

TEST_CASE("an update whose id does not increase is dropped, not stored") {
  buffer_fixture f{10, 1h};
  f.publish(make_update(1000, 1));
  f.publish(make_update(1000, 2)); // same id
  f.publish(make_update(0, 3));    // older id
  CHECK_EQ(f.log->items.size(), 1u);
  CHECK_EQ(ask<uint64_t>(f, f.buf, atom::ping_v), 1u);
}

TEST_CASE("the service port tells an empty history and no price yet from a "
          "buffer that does not answer") {
  buffer_fixture f{10, 1h};
  auto port = make_service_port(*f.sys, {}, f.buf, {}, {}, 2s);
  auto updates = [&] {
    std::optional<std::optional<std::vector<update>>> got;
    port->updates(std::nullopt, [&got](std::optional<std::vector<update>> us) {
      got = std::move(us);
    });
    f.run();
    REQUIRE(got); // the callback ran
    return *got;
  };
  auto latest = [&] {
    std::optional<latest_answer> got;
    port->latest([&got](latest_answer a) {
      got = std::move(a);
    });
    f.run();
    REQUIRE(got);
    return *got;
  };
  auto none = updates();
  REQUIRE(none); // answered: an empty list
  CHECK(none->empty());
  f.publish(make_update(0, 1));
  auto one = updates();
  REQUIRE(one);
  CHECK_EQ(one->size(), 1u);
  auto price = latest();
  CHECK(price.answered);
  REQUIRE(price.latest);
  CHECK_EQ(price.latest->ts_ms, start_ms);
  // The buffer ends: the requests fail, which is not "no updates" nor "no
  // price yet".
  caf::anon_send_exit(f.buf, caf::exit_reason::kill);
  f.run();
  CHECK_FALSE(updates());
  auto gone = latest();
  CHECK_FALSE(gone.answered);
  CHECK_FALSE(gone.latest);
}

TEST_CASE("updates restored from the state file are stored and passed on, "
          "but not counted as published") {
  buffer_fixture f{10, 1h};
  auto now = f.clock->now_ms();
  for (uint64_t id : {1, 2})
    caf::anon_send(f.buf, atom::restore_v, update{id, now, 97000.0 + id});
  f.run();
  f.publish(update{3, now, 97003.0});
  CHECK_EQ(f.log->items.size(), 3u);
  CHECK_EQ(f.stats->buffer_entries.load(), 3u);
  // rate() of the counter must not jump at a restart by the history restored.
  CHECK_EQ(f.stats->events_published.load(), 1u);
  CHECK_EQ(f.stats->last_price_usd.load(), 97003.0);
}

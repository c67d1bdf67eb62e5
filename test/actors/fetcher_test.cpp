#include "actors/fetcher.hpp"

#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

struct published {
  std::vector<update> updates;
};

/// The fetcher's sink (the buffer, or the bus in cluster mode): records
/// what the fetcher publishes. Its interface has nothing else to call.
update_sink_actor::behavior_type mock_sink(std::shared_ptr<published> log) {
  return {
      [log](atom::publish, const update& u) {
        log->updates.push_back(u);
      },
  };
}

struct fetcher_fixture : fixture {
  std::shared_ptr<fake_upstream> upstream = std::make_shared<fake_upstream>();
  std::shared_ptr<published> log = std::make_shared<published>();
  std::shared_ptr<fixed_random> rng = std::make_shared<fixed_random>();
  fetcher_actor fetcher_handle;

  explicit fetcher_fixture(caf::timespan interval = 5s, bool active = true) {
    auto sink = stop_at_end(sys->spawn(mock_sink, log));
    fetcher_handle
        = stop_at_end(sys->spawn(fetcher, upstream, sink, clock, rng, "BTC-USD",
                                 interval, stats, active, update{}));
    run();
  }
};

} // namespace

TEST_CASE("the fetcher polls at once, then on a fixed-rate schedule that "
          "slow answers do not shift") {
  fetcher_fixture f;
  CHECK_EQ(f.upstream->requests, 1u);
  // A slow answer (1.7 s) must not push later polls back.
  f.advance(1700ms);
  CHECK(f.upstream->answer_price(97000.5));
  f.run();
  f.advance(3299ms);
  CHECK_EQ(f.upstream->requests, 1u);
  f.advance(1ms); // t = 5 s
  CHECK_EQ(f.upstream->requests, 2u);
  CHECK(f.upstream->answer_price(97001));
  f.run();
  f.advance(5s); // t = 10 s
  CHECK_EQ(f.upstream->requests, 3u);
  CHECK(f.upstream->answer_price(97002));
  f.run();
  REQUIRE_EQ(f.log->updates.size(), 3u);
  CHECK_EQ(f.log->updates[0].ts_ms, start_ms + 1700);
  CHECK_EQ(f.log->updates[0].price, 97000.5);
  CHECK_EQ(f.log->updates[1].ts_ms, start_ms + 5000);
  CHECK_EQ(f.log->updates[2].ts_ms, start_ms + 10000);
}

TEST_CASE("a tick that finds a request in flight is skipped, and missed "
          "ticks are never bursted") {
  fetcher_fixture f;
  CHECK_EQ(f.upstream->requests, 1u);
  f.advance(5s);
  f.advance(5s);
  f.advance(4s); // t = 14 s: two ticks passed while the request hung
  CHECK_EQ(f.upstream->requests, 1u);
  CHECK(f.upstream->answer_price(97000));
  f.run();
  CHECK_EQ(f.upstream->requests, 1u); // no catch-up burst
  f.advance(1s);                      // t = 15 s: the next regular tick
  CHECK_EQ(f.upstream->requests, 2u);
  CHECK_EQ(f.log->updates.size(), 1u);
}

TEST_CASE("past the lease's deadline, ticks are neither polled nor counted "
          "as skipped") {
  // Cluster mode: a node whose lease ran out (paused, say) before the bus
  // told it to follow is not the poller, and skips nothing.
  fetcher_fixture f{5s, false};
  auto until = f.sched->clock().now() + 12s;
  caf::anon_send(f.fetcher_handle, atom::lead_v, caf::timespan{0},
                 caf::timespan{until.time_since_epoch()});
  f.run();
  for (double price : {1.0, 2.0, 3.0}) { // t = 0, 5, 10 s
    CHECK(f.upstream->answer_price(price));
    f.run();
    f.advance(5s);
  }
  f.advance(10s); // t = 25 s: three ticks past the deadline
  CHECK_EQ(f.upstream->requests, 3u);
  CHECK_EQ(f.log->updates.size(), 3u);
  CHECK_EQ(f.stats->upstream_skipped_ticks.load(), 0u);
}

TEST_CASE("ids are the retrieval time, or previous + 1 when the clock jumps "
          "back, and timestamps never go back") {
  fetcher_fixture f;
  CHECK(f.upstream->answer_price(1));
  f.run();
  f.clock->now -= 60'000; // the wall clock steps back a minute
  f.advance(5s);
  CHECK(f.upstream->answer_price(2));
  f.run();
  f.advance(5s);
  CHECK(f.upstream->answer_price(3));
  f.run();
  REQUIRE_EQ(f.log->updates.size(), 3u);
  auto first = f.log->updates[0].id;
  CHECK_EQ(first, static_cast<uint64_t>(start_ms));
  CHECK_EQ(f.log->updates[1].id, first + 1);
  CHECK_EQ(f.log->updates[1].ts_ms, start_ms); // held at the previous one
  CHECK_EQ(f.log->updates[2].id, first + 2);
}

TEST_CASE("unusable answers and transport errors are never published") {
  fetcher_fixture f{1s};
  auto answer_then_tick = [&](fetch_result r) {
    CHECK(f.upstream->answer(std::move(r)));
    f.run();
    f.advance(1s);
  };
  fetch_result server_error;
  server_error.status = 500;
  server_error.body = R"({"Data":{},"Err":{"type":1,"message":"down"}})";
  answer_then_tick(server_error);
  fetch_result not_json;
  not_json.status = 200;
  not_json.body = "<html>";
  answer_then_tick(not_json);
  fetch_result zero;
  zero.status = 200;
  zero.body = coindesk_body(0);
  answer_then_tick(zero);
  fetch_result negative;
  negative.status = 200;
  negative.body = coindesk_body(-5);
  answer_then_tick(negative);
  fetch_result reset;
  reset.failure = transport_error::connect;
  reset.error = "read: connection reset by peer";
  answer_then_tick(reset);
  CHECK(f.log->updates.empty());
  CHECK(f.upstream->answer_price(97123.45));
  f.run();
  REQUIRE_EQ(f.log->updates.size(), 1u);
  CHECK_EQ(f.log->updates[0].price, 97123.45);
}

TEST_CASE("the fetcher stops its upstream client when it exits") {
  fetcher_fixture f;
  caf::anon_send_exit(f.fetcher_handle, caf::exit_reason::user_shutdown);
  f.run();
  CHECK(f.upstream->stopped);
}

namespace {

fetch_result too_many(std::string retry_after) {
  fetch_result r;
  r.status = 429;
  r.body = R"({"Data":{},"Err":{"type":99,"message":"rate limited"}})";
  r.retry_after = std::move(retry_after);
  return r;
}

} // namespace

TEST_CASE("Retry-After in seconds suspends polling beyond the interval") {
  fetcher_fixture f{1s};
  CHECK(f.upstream->answer(too_many("3")));
  f.run();
  f.advance(1s);
  f.advance(1s);
  CHECK_EQ(f.upstream->requests, 1u); // t = 2 s: still waiting
  f.advance(1s);                      // t = 3 s: due
  CHECK_EQ(f.upstream->requests, 2u);
  CHECK(f.upstream->answer_price(97000));
  f.run();
  CHECK_EQ(f.log->updates.size(), 1u);
}

TEST_CASE("Retry-After as an HTTP date suspends polling until then") {
  fetcher_fixture f{1s};
  // start_ms is Wed, 26 Nov 2025 18:45:17 GMT; the date asks for 2.5 s.
  f.advance(500ms);
  CHECK(f.upstream->answer(too_many("Wed, 26 Nov 2025 18:45:20 GMT")));
  f.run();
  f.advance(500ms);
  f.advance(1s);
  CHECK_EQ(f.upstream->requests, 1u); // t = 2 s
  f.advance(1s);                      // t = 3 s: past 18:45:20
  CHECK_EQ(f.upstream->requests, 2u);
}

namespace {

fetch_result status(int code) {
  fetch_result r;
  r.status = code;
  r.body = R"({"Data":{},"Err":{"type":1,"message":"no"}})";
  return r;
}

} // namespace

TEST_CASE("failures are retried after 250, 500, 1000, 2000 ms, never into "
          "the next tick, and a success resets the backoff") {
  fetcher_fixture f{5s};
  auto fail_at = [&](std::chrono::milliseconds wait, size_t expected) {
    f.advance(wait);
    CHECK_EQ(f.upstream->requests, expected);
    CHECK(f.upstream->answer(status(500)));
    f.run();
  };
  CHECK(f.upstream->answer(status(500))); // t = 0
  f.run();
  fail_at(250ms, 2); // t = 0.25 s
  fail_at(500ms, 3); // t = 0.75 s
  fail_at(1s, 4);    // t = 1.75 s
  fail_at(2s, 5);    // t = 3.75 s; 4 s more would pass the tick at 5 s
  f.advance(1249ms); // t = 4.999 s
  CHECK_EQ(f.upstream->requests, 5u);
  fail_at(1ms, 6);   // the tick at 5 s; 8 s more would pass the next one
  f.advance(4999ms); // t = 9.999 s
  CHECK_EQ(f.upstream->requests, 6u);
  f.advance(1ms); // the tick at 10 s
  CHECK_EQ(f.upstream->requests, 7u);
  CHECK(f.upstream->answer_price(97000));
  f.run();
  CHECK_EQ(f.log->updates.size(), 1u);
  f.advance(5s); // t = 15 s: fails again, and the backoff starts over
  CHECK(f.upstream->answer(status(502)));
  f.run();
  f.advance(249ms);
  CHECK_EQ(f.upstream->requests, 8u);
  f.advance(1ms);
  CHECK_EQ(f.upstream->requests, 9u);
}

TEST_CASE("retry delays carry the injected jitter") {
  fetcher_fixture f{5s};
  f.rng->value = 0.0; // factor 0.8
  CHECK(f.upstream->answer(status(500)));
  f.run();
  f.advance(199ms);
  CHECK_EQ(f.upstream->requests, 1u);
  f.advance(1ms);
  CHECK_EQ(f.upstream->requests, 2u);
}

TEST_CASE("a 401 stops requests for max(60 s, interval), then polling "
          "resumes on the tick grid") {
  fetcher_fixture f{5s};
  CHECK(f.upstream->answer(status(401)));
  f.run();
  for (int i = 0; i < 11; ++i)
    f.advance(5s); // t = 55 s
  CHECK_EQ(f.upstream->requests, 1u);
  f.advance(5s); // t = 60 s: the pause is over
  CHECK_EQ(f.upstream->requests, 2u);
  CHECK(f.upstream->answer_price(1));
  f.run();
  f.advance(5s);
  CHECK_EQ(f.upstream->requests, 3u);
}

TEST_CASE("a timeout and a refused connection are retried like failures") {
  fetcher_fixture f{5s};
  fetch_result timeout;
  timeout.failure = transport_error::timeout;
  timeout.error = "read: timeout";
  CHECK(f.upstream->answer(timeout));
  f.run();
  f.advance(250ms);
  CHECK_EQ(f.upstream->requests, 2u);
  fetch_result refused;
  refused.failure = transport_error::connect;
  refused.error = "connect: Connection refused";
  CHECK(f.upstream->answer(refused));
  f.run();
  f.advance(500ms);
  CHECK_EQ(f.upstream->requests, 3u);
  CHECK(f.upstream->answer_price(2));
  f.run();
  CHECK_EQ(f.log->updates.size(), 1u);
}

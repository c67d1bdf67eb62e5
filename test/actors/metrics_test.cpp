// The metrics the actors own move exactly as the events they count.

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/connection.hpp"
#include "actors/fetcher.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

uint64_t value(const std::atomic<uint64_t>& a) {
  return a.load();
}

} // namespace

TEST_CASE("published events, buffer entries and the last price follow the "
          "buffer") {
  core_fixture f{3};
  for (int n = 1; n <= 5; ++n)
    f.publish(n);
  CHECK_EQ(value(f.stats->events_published), 5u);
  CHECK_EQ(value(f.stats->buffer_entries), 3u);
  CHECK_EQ(f.stats->buffer_oldest_ts_ms.load(), start_ms + 3);
  CHECK_EQ(f.stats->last_price_ts_ms.load(), start_ms + 5);
  CHECK_EQ(f.stats->last_price_usd.load(), 1005.0);
}

TEST_CASE("replayed and gap events count what resuming clients got") {
  core_fixture f{3};
  for (int n = 1; n <= 5; ++n)
    f.publish(n);
  f.connect(core_fixture::after(core_fixture::id(3)));
  CHECK_EQ(value(f.stats->replayed_events), 2u); // 4 and 5
  CHECK_EQ(value(f.stats->gap_events), 0u);
  f.connect(core_fixture::after(1)); // long gone: a gap, then 3 to 5
  CHECK_EQ(value(f.stats->replayed_events), 5u);
  CHECK_EQ(value(f.stats->gap_events), 1u);
  f.connect(resume_point{}); // the latest update first: not a replay
  CHECK_EQ(value(f.stats->replayed_events), 5u);
}

TEST_CASE("a fan-out is timed once every connection has handed the frame "
          "on") {
  core_fixture f;
  f.connect(resume_point{});
  f.connect(resume_point{});
  f.connect(resume_point{});
  CHECK_EQ(f.stats->event_fanout.count(), 0u);
  f.publish(1);
  CHECK_EQ(f.stats->event_fanout.count(), 1u);
  f.publish(2);
  CHECK_EQ(f.stats->event_fanout.count(), 2u);
}

TEST_CASE("live connection actors are counted, and a shutdown closes their "
          "streams as such") {
  core_fixture f;
  auto s1 = f.connect(resume_point{}).second;
  auto s2 = f.connect(resume_point{}).second;
  CHECK_EQ(f.stats->connection_actors.load(), 2);
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.run();
  CHECK_EQ(f.stats->connection_actors.load(), 0);
  CHECK_EQ(s1->closed_with, std::optional<end_cause>{end_cause::shutdown});
  CHECK_EQ(s2->closed_with, std::optional<end_cause>{end_cause::shutdown});
}

TEST_CASE("a core failure closes streams as errors") {
  core_fixture f;
  auto s = f.connect(resume_point{}).second;
  caf::anon_send_exit(f.b, caf::exit_reason::kill);
  f.run();
  CHECK_EQ(s->closed_with, std::optional<end_cause>{end_cause::error});
}

TEST_CASE("upstream requests are counted by outcome, and skipped ticks too") {
  fixture f;
  auto upstream = std::make_shared<fake_upstream>();
  auto rng = std::make_shared<fixed_random>();
  auto b
      = f.stop_at_end(f.sys->spawn(broadcaster, caf::timespan{15s}, f.stats));
  auto buf = f.stop_at_end(f.sys->spawn(buffer, size_t{10}, 1h, b, f.clock,
                                        f.stats, caf::timespan::zero()));
  f.stop_at_end(f.sys->spawn(fetcher, upstream, buf, f.clock, rng, "BTC-USD",
                             caf::timespan{1s}, f.stats, true, update{}));
  f.run();
  CHECK(upstream->answer_price(1));
  f.run();
  f.advance(1s);
  fetch_result limited;
  limited.status = 429;
  limited.retry_after = "2";
  CHECK(upstream->answer(limited));
  f.run();
  f.advance(1s); // skipped: Retry-After
  f.advance(1s); // t = 3 s: due again
  fetch_result slow;
  slow.failure = transport_error::timeout;
  CHECK(upstream->answer(slow));
  f.run();
  auto& m = *f.stats;
  CHECK_EQ(value(m.upstream_requests[size_t(fetch_outcome::ok)]), 1u);
  CHECK_EQ(value(m.upstream_requests[size_t(fetch_outcome::rate_limited)]), 1u);
  CHECK_EQ(value(m.upstream_requests[size_t(fetch_outcome::timeout)]), 1u);
  CHECK_EQ(m.upstream_request.count(), 3u);
  CHECK_EQ(value(m.upstream_skipped_ticks), 1u);
}

#include "core/metrics.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace btcstream;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos
         || text.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST_CASE("a histogram's buckets are cumulative, with sum and count") {
  histogram h;
  h.observe(0.0004); // le 0.0005
  h.observe(0.003);  // le 0.005
  h.observe(0.003);
  h.observe(20); // only +Inf
  std::string out;
  h.render(out, "x_seconds");
  CHECK(has_line(out, R"(x_seconds_bucket{le="0.0005"} 1)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="0.0025"} 1)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="0.005"} 3)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="10"} 3)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="+Inf"} 4)"));
  CHECK(has_line(out, "x_seconds_count 4"));
  CHECK(has_line(out, "x_seconds_sum 20.0064"));
}

TEST_CASE("a histogram sums what every thread observed") {
  // More threads than stripes: some share one, all are counted.
  histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 1000; ++i)
        h.observe(t % 2 == 0 ? 0.0004 : 2.0);
    });
  for (auto& t : threads)
    t.join();
  CHECK(h.count() == 12000);
  std::string out;
  h.render(out, "x_seconds");
  CHECK(has_line(out, R"(x_seconds_bucket{le="0.0005"} 6000)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="1"} 6000)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="2.5"} 12000)"));
  CHECK(has_line(out, R"(x_seconds_bucket{le="+Inf"} 12000)"));
  CHECK(has_line(out, "x_seconds_count 12000"));
  CHECK(has_line(out, "x_seconds_sum 12002.4"));
}

TEST_CASE("a fan-out is timed when its last receiver is counted") {
  auto m = std::make_shared<metrics>();
  auto probe = std::make_shared<fanout_probe>(2, steady_now_ns(), m);
  fanout_probe::handed(probe);
  CHECK_EQ(m->event_fanout.count(), 0u);
  fanout_probe::handed(probe);
  CHECK_EQ(m->event_fanout.count(), 1u);
}

TEST_CASE("a thread that batches hands its count to the probe when it "
          "publishes or meets another probe, once") {
  auto m = std::make_shared<metrics>();
  auto first = std::make_shared<fanout_probe>(3, steady_now_ns(), m);
  auto second = std::make_shared<fanout_probe>(1, steady_now_ns(), m);
  std::vector<uint64_t> seen;
  // A thread of its own: batching is a property of the thread.
  std::thread t{[&] {
    batch_handed_counts();
    for (int i = 0; i < 3; ++i)
      fanout_probe::handed(first);
    seen.push_back(m->event_fanout.count()); // all three kept here
    fanout_probe::handed(second);            // first's three go out
    seen.push_back(m->event_fanout.count());
    publish_handed_counts(); // second's one
    seen.push_back(m->event_fanout.count());
    publish_handed_counts(); // nothing left: no second count
    seen.push_back(m->event_fanout.count());
  }};
  t.join();
  CHECK_EQ(seen, std::vector<uint64_t>{0, 1, 2, 2});
}

TEST_CASE("the exposition names every metric with HELP, TYPE and labels") {
  metrics m;
  m.sse_connections = 7;
  m.sse_max_clients = 19900;
  m.count_disconnect(disconnect_reason::slow_consumer);
  m.count_rejection(reject_reason::max_clients);
  m.count_upstream(fetch_outcome::tls_error);
  m.count_request(route_label::price, 503);
  m.count_request(route_label::price, 503);
  m.count_request(route_label::static_file, 418); // an unlisted code
  m.buffer_entries = 3;
  auto text = render_metrics(m, 5, 1000, process_stats{}, 8);
  CHECK(has_line(text, "# TYPE btcstream_sse_clients gauge"));
  CHECK(has_line(text, "btcstream_sse_clients 5"));
  CHECK(has_line(text, "# TYPE btcstream_sse_max_clients gauge"));
  CHECK(has_line(text, "btcstream_sse_max_clients 19900"));
  CHECK(has_line(text, "btcstream_sse_connections_total 7"));
  CHECK(has_line(
      text, R"(btcstream_sse_disconnects_total{reason="slow_consumer"} 1)"));
  CHECK(has_line(text,
                 R"(btcstream_sse_disconnects_total{reason="shutdown"} 0)"));
  CHECK(has_line(text,
                 R"(btcstream_sse_rejected_total{reason="max_clients"} 1)"));
  CHECK(has_line(
      text, R"(btcstream_upstream_requests_total{outcome="tls_error"} 1)"));
  CHECK(has_line(
      text, R"(btcstream_http_requests_total{route="price",code="503"} 2)"));
  CHECK(has_line(
      text, R"(btcstream_http_requests_total{route="static",code="other"} 1)"));
  CHECK(has_line(text, "btcstream_buffer_entries 3"));
  CHECK(has_line(text, R"(btcstream_live_objects{kind="actor"} 8)"));
  // No price yet: the price gauges are absent rather than made up.
  CHECK(text.find("btcstream_last_price_usd") == std::string::npos);
  m.last_price_ts_ms = 400;
  m.last_price_usd = 97123.45;
  text = render_metrics(m, 5, 1000, process_stats{}, 8);
  CHECK(has_line(text, "btcstream_last_price_age_seconds 0.6"));
  CHECK(has_line(text, "btcstream_last_price_usd 97123.45"));
}

TEST_CASE("process stats are read from /proc") {
  auto p = read_process_stats();
  CHECK(p.resident_memory_bytes > 0);
  CHECK(p.open_fds >= 3);
  CHECK(p.max_fds >= p.open_fds);
  CHECK(p.start_time_seconds > 1.6e9);
}

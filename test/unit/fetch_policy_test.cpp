#include "core/fetch_policy.hpp"

#include <doctest/doctest.h>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

/// Always the same draw: 0.5 makes the ±20 % jitter factor exactly 1.
struct fixed_random final : random_source {
  double value = 0.5;
  double uniform() override { return value; }
};

fetch_result answer(int status, std::string retry_after = {}) {
  fetch_result r;
  r.status = status;
  r.retry_after = std::move(retry_after);
  return r;
}

fetch_result broken(transport_error e) {
  fetch_result r;
  r.failure = e;
  r.error = "x";
  return r;
}

coindesk_result usable() {
  coindesk_result c;
  c.price = 1;
  return c;
}

constexpr int64_t wall = 1764182717000; // Wed, 26 Nov 2025 18:45:17 GMT

} // namespace

TEST_CASE("outcomes are classified as the metrics name them") {
  CHECK_EQ(classify(answer(200), usable()), fetch_outcome::ok);
  CHECK_EQ(classify(answer(200), coindesk_result{}), fetch_outcome::invalid);
  CHECK_EQ(classify(answer(500), coindesk_result{}), fetch_outcome::http_error);
  CHECK_EQ(classify(answer(401), coindesk_result{}), fetch_outcome::http_error);
  CHECK_EQ(classify(answer(429), coindesk_result{}),
           fetch_outcome::rate_limited);
  CHECK_EQ(classify(broken(transport_error::timeout), {}),
           fetch_outcome::timeout);
  CHECK_EQ(classify(broken(transport_error::tls), {}),
           fetch_outcome::tls_error);
  CHECK_EQ(classify(broken(transport_error::connect), {}),
           fetch_outcome::connect_error);
  CHECK_EQ(std::string{to_string(fetch_outcome::rate_limited)}, "rate_limited");
}

TEST_CASE("retries start at 250 ms and double, but never run into the next "
          "tick") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  auto fail = [&](int64_t now, int64_t next_tick) {
    return p.after(fetch_outcome::http_error, answer(500), now, next_tick,
                   wall);
  };
  auto d = fail(0, 5000);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{250});
  d = fail(250, 5000);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{750});
  d = fail(750, 5000);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{1750});
  d = fail(1750, 5000);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{3750});
  d = fail(3750, 5000); // 4 s more would be 7.75 s: past the tick
  CHECK_FALSE(d.retry_at);
  d = fail(5000, 10000); // 8 s: past the next tick too; only ticks remain
  CHECK_FALSE(d.retry_at);
  CHECK_EQ(p.failures(), 6u);
  d = p.after(fetch_outcome::ok, answer(200), 10000, 15000, wall);
  CHECK_FALSE(d.retry_at);
  CHECK_EQ(p.failures(), 0u);
  CHECK_EQ(fail(10000, 15000).retry_at, std::optional<int64_t>{10250});
}

TEST_CASE("retry delays are jittered by ±20 %") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  rng.value = 0.0;
  CHECK_EQ(p.after(fetch_outcome::timeout, broken(transport_error::timeout), 0,
                   5000, wall)
               .retry_at,
           std::optional<int64_t>{200});
  rng.value = 0.999;
  CHECK_EQ(p.after(fetch_outcome::timeout, broken(transport_error::timeout), 0,
                   5000, wall)
               .retry_at,
           std::optional<int64_t>{600}); // 500 · 1.1996, rounded
}

TEST_CASE("Retry-After holds every request until then, even beyond the "
          "interval") {
  fixed_random rng;
  fetch_policy p{1s, rng};
  auto d
      = p.after(fetch_outcome::rate_limited, answer(429, "5"), 100, 1000, wall);
  CHECK_EQ(d.not_before, 5100);
  CHECK_FALSE(d.retry_at); // the ticks at 1..5 s are skipped instead
  d = p.after(fetch_outcome::http_error,
              answer(503, "Wed, 26 Nov 2025 18:45:17 GMT"), 100, 1000,
              wall - 300);
  // 300 ms asked, but the second failure's backoff is 500 ms.
  CHECK_EQ(d.not_before, 600);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{600}); // before the next tick
}

TEST_CASE("a Retry-After of 0 or in the past backs off, not a retry at once") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  int64_t now = 0;
  int64_t previous = 0;
  // A server answering 429 "0" to every request: the retries spread out as
  // after any failure (250, 500, 1000, 2000 ms), then only ticks remain.
  for (int64_t want : {250, 500, 1000, 2000}) {
    auto d = p.after(fetch_outcome::rate_limited, answer(429, "0"), now, 5000,
                     wall);
    CHECK_EQ(d.not_before - now, want);
    REQUIRE(d.retry_at);
    CHECK_GT(*d.retry_at, previous);
    previous = now = *d.retry_at;
  }
  auto past
      = p.after(fetch_outcome::http_error,
                answer(503, "Wed, 26 Nov 2025 18:40:00 GMT"), now, 5000, wall);
  CHECK_EQ(past.not_before - now, 4000); // the fifth backoff, not 0
  CHECK_FALSE(past.retry_at);            // past the next tick
}

TEST_CASE("a Retry-After beyond an hour holds the requests for an hour") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  for (auto value : {"7200", "9999999999", "Fri, 31 Dec 9999 23:59:59 GMT"}) {
    auto d = p.after(fetch_outcome::rate_limited, answer(429, value), 100, 5000,
                     wall);
    CHECK_EQ(d.not_before, 100 + fetch_policy::max_retry_after_ms);
    CHECK_FALSE(d.retry_at);
  }
}

TEST_CASE("a 429 without a usable Retry-After backs off like a failure") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  auto d = p.after(fetch_outcome::rate_limited, answer(429, "soon"), 0, 5000,
                   wall);
  CHECK_EQ(d.not_before, 0);
  CHECK_EQ(d.retry_at, std::optional<int64_t>{250});
}

TEST_CASE("401 and 403 pause requests for max(60 s, interval)") {
  fixed_random rng;
  fetch_policy fast{5s, rng};
  auto d = fast.after(fetch_outcome::http_error, answer(401), 1000, 5000, wall);
  CHECK(d.unauthorized);
  CHECK_EQ(d.not_before, 61000);
  CHECK_FALSE(d.retry_at);
  fetch_policy slow{2min, rng};
  d = slow.after(fetch_outcome::http_error, answer(403), 0, 120000, wall);
  CHECK_EQ(d.not_before, 120000);
}

TEST_CASE("other client errors are not retried before the next tick") {
  fixed_random rng;
  fetch_policy p{5s, rng};
  for (int status : {400, 404, 410}) {
    CAPTURE(status);
    auto d = p.after(fetch_outcome::http_error, answer(status), 0, 5000, wall);
    CHECK_FALSE(d.retry_at);
    CHECK_FALSE(d.unauthorized);
    CHECK_EQ(d.not_before, 0);
  }
}

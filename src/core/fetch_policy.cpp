#include "core/fetch_policy.hpp"

#include "core/retry_after.hpp"

#include <algorithm>

namespace btcstream {

const char* to_string(fetch_outcome o) {
  switch (o) {
  case fetch_outcome::ok:
    return "ok";
  case fetch_outcome::http_error:
    return "http_error";
  case fetch_outcome::timeout:
    return "timeout";
  case fetch_outcome::invalid:
    return "invalid";
  case fetch_outcome::rate_limited:
    return "rate_limited";
  case fetch_outcome::tls_error:
    return "tls_error";
  case fetch_outcome::connect_error:
    return "connect_error";
  }
  return "unknown";
}

fetch_outcome classify(const fetch_result& r, const coindesk_result& parsed) {
  switch (r.failure) {
  case transport_error::connect:
    return fetch_outcome::connect_error;
  case transport_error::tls:
    return fetch_outcome::tls_error;
  case transport_error::timeout:
    return fetch_outcome::timeout;
  case transport_error::none:
    break;
  }
  if (r.status == 429)
    return fetch_outcome::rate_limited;
  if (r.status != 200)
    return fetch_outcome::http_error;
  return parsed.price ? fetch_outcome::ok : fetch_outcome::invalid;
}

fetch_policy::fetch_policy(std::chrono::milliseconds interval,
                           random_source& rng)
    : interval_ms_(interval.count()), rng_(rng) {}

fetch_policy::decision fetch_policy::after(fetch_outcome o,
                                           const fetch_result& r, int64_t now,
                                           int64_t next_tick,
                                           int64_t wall_now_ms) {
  decision d;
  d.not_before = now;
  if (o == fetch_outcome::ok) {
    failures_ = 0;
    return d;
  }
  ++failures_;
  if (r.status == 401 || r.status == 403) {
    d.unauthorized = true;
    d.not_before = now + std::max(min_unauthorized_pause_ms, interval_ms_);
    return d;
  }
  // 250 ms · 2^(failures - 1), ±20 %; the exponent is capped far beyond
  // any interval so the shift cannot overflow.
  auto exponent = std::min(failures_ - 1, 30u);
  auto delay = jitter(first_retry_ms << exponent, 0.2, rng_);
  if (r.status == 429 || r.status == 503) {
    if (auto wait = parse_retry_after(r.retry_after, wall_now_ms)) {
      // The server said when: then, even beyond the interval. But not
      // sooner than the backoff (up to an interval): a "0" or a past date
      // would have us ask again at once, again and again, of a server that
      // limits our rate. And not later than max_retry_after_ms: one odd
      // header must not silence the fetcher for years (or overflow).
      auto at_least = std::min(delay, interval_ms_);
      d.not_before
          = now + std::min(std::max(*wait, at_least), max_retry_after_ms);
      if (d.not_before < next_tick)
        d.retry_at = d.not_before;
      return d;
    }
  }
  if (o == fetch_outcome::http_error && r.status >= 400 && r.status < 500
      && r.status != 408 && r.status != 429)
    return d; // a client error: retrying at once will not help
  if (now + delay < next_tick)
    d.retry_at = now + delay;
  return d;
}

} // namespace btcstream

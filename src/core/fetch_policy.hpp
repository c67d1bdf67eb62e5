#pragma once

#include "core/clock.hpp"
#include "core/coindesk.hpp"
#include "core/upstream_client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace btcstream {

/// How one upstream request ended, as metrics and logs name it.
enum class fetch_outcome {
  ok,
  http_error,    ///< a 4xx/5xx answer (also 401/403)
  timeout,       ///< no complete answer within the request timeout
  invalid,       ///< HTTP 200 but not a usable CoinDesk answer
  rate_limited,  ///< 429
  tls_error,     ///< handshake or certificate/host-name verification
  connect_error, ///< resolve, connect, or the connection failed mid-way
};

const char* to_string(fetch_outcome o);

/// Classifies a request's result and its parsed body.
fetch_outcome classify(const fetch_result& r, const coindesk_result& parsed);

/// The upstream failure policy of DESIGN.md as plain logic. Times are
/// milliseconds on one steady timeline chosen by the caller.
///
/// - After a failure, retry after 250 ms, doubling with each further failure
///   (±20 % jitter), but only if the retry starts before the next regular
///   tick; once the delay outgrows the interval only ticks remain. Success
///   resets the delay.
/// - 429 or 503 with `Retry-After` (seconds or HTTP-date): no request before
///   then, even beyond the interval; but no sooner than the backoff above
///   (at most an interval) and no later than an hour.
/// - 401/403: no request for max(60 s, interval).
/// - Any other 4xx: no retry; the next tick tries again.
class fetch_policy {
public:
  /// What to do after an answer.
  struct decision {
    /// When to retry before the next tick, if at all.
    std::optional<int64_t> retry_at;
    /// No request (tick or retry) before this time.
    int64_t not_before = 0;
    /// Whether this answer begins a 401/403 pause (log it once, clearly).
    bool unauthorized = false;
  };

  fetch_policy(std::chrono::milliseconds interval, random_source& rng);

  /// Decides after an answer that ended with `o` at `now`; `next_tick` is
  /// when the next regular tick is due; `wall_now_ms` reads HTTP-dates.
  decision after(fetch_outcome o, const fetch_result& r, int64_t now,
                 int64_t next_tick, int64_t wall_now_ms);

  /// Consecutive failures so far (0 after a success).
  unsigned failures() const { return failures_; }

  /// The first retry delay and the pause after 401/403, for tests and docs.
  static constexpr int64_t first_retry_ms = 250;
  static constexpr int64_t min_unauthorized_pause_ms = 60'000;
  /// The longest a Retry-After holds the requests.
  static constexpr int64_t max_retry_after_ms = 3'600'000;

private:
  int64_t interval_ms_;
  random_source& rng_;
  unsigned failures_ = 0;
};

} // namespace btcstream

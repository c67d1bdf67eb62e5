#include "core/retry_after.hpp"

#include <doctest/doctest.h>

using btcstream::parse_retry_after;

namespace {

// 2025-11-26T18:45:17Z in unix ms.
constexpr int64_t now_ms = 1764182717000;

} // namespace

TEST_CASE("Retry-After in delay-seconds is read as milliseconds") {
  CHECK_EQ(parse_retry_after("0", now_ms), 0);
  CHECK_EQ(parse_retry_after("1", now_ms), 1000);
  CHECK_EQ(parse_retry_after(" 120 ", now_ms), 120'000);
}

TEST_CASE("Retry-After as an IMF-fixdate is the time left until then") {
  CHECK_EQ(parse_retry_after("Wed, 26 Nov 2025 18:45:47 GMT", now_ms), 30'000);
  CHECK_EQ(parse_retry_after("Thu, 27 Nov 2025 18:45:17 GMT", now_ms),
           86'400'000);
  // A date in the past means: retry now.
  CHECK_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now_ms), 0);
}

TEST_CASE("malformed Retry-After values are rejected") {
  for (auto bad :
       {"", "-1", "1.5", "1e3", "soon", "12345678901",
        "Wed, 26 Nov 2025 18:45:47 UTC", "Wed, 26 Foo 2025 18:45:47 GMT",
        "Xyz, 26 Nov 2025 18:45:47 GMT", "Wed, 26 Nov 2025 25:45:47 GMT",
        "Wednesday, 26-Nov-25 18:45:47 GMT"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_retry_after(bad, now_ms).has_value());
  }
}

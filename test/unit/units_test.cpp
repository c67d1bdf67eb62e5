#include "core/units.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

using namespace btcstream;
using namespace std::chrono_literals;
using strings = std::initializer_list<std::string_view>;

namespace {

// -1 stands for "rejected", so CHECK prints the value on failure.
int64_t ms(std::string_view s) {
  auto d = parse_duration(s);
  return d ? d->count() : -1;
}

} // namespace

TEST_CASE("durations take ms, s, min, m and h") {
  CHECK(ms("250ms") == 250);
  CHECK(ms("5s") == 5000);
  CHECK(ms("2min") == 120'000);
  CHECK(ms("2m") == 120'000);
  CHECK(ms("1h") == 3'600'000);
  CHECK(parse_duration("1h") == std::optional{std::chrono::milliseconds{1h}});
}

TEST_CASE("durations accept zero and leading zeros") {
  CHECK(ms("0s") == 0);
  CHECK(ms("0ms") == 0);
  CHECK(ms("007s") == 7000);
  CHECK(ms("0000000000000000000000000000001ms") == 1);
}

TEST_CASE("durations accept a fraction, computed exactly") {
  CHECK(ms("1.5s") == 1500);
  CHECK(ms("0.25s") == 250);
  CHECK(ms("1.5min") == 90'000);
  CHECK(ms("0.5m") == 30'000);
  CHECK(ms("1.5h") == 5'400'000);
  CHECK(ms("0.001s") == 1);
  CHECK(ms("2.000000000000000000000000s") == 2000);
  CHECK(ms("0.00001h") == 36);
  // 0.1 is not exact in binary; 0.3 * 1000 would be 300.00000000000006.
  CHECK(ms("0.3s") == 300);
  CHECK(ms("0.7s") == 700);
}

TEST_CASE("sub-millisecond remainders round up") {
  CHECK(ms("0.1ms") == 1);
  CHECK(ms("1.0001s") == 1001);
  CHECK(ms("0.0000000000000000000000001s") == 1);
  CHECK(ms("0.000001h") == 4);     // 3.6 ms
  CHECK(ms("0.00000001min") == 1); // 0.0006 ms
  CHECK(ms("1.999ms") == 2);
  CHECK(ms("1.000s") == 1000);
}

TEST_CASE("durations up to the int64 millisecond limit are accepted") {
  CHECK(ms("9223372036854775807ms") == INT64_MAX);
  CHECK(ms("9223372036854775.807s") == INT64_MAX);
  CHECK(ms("9223372036854775.8069s") == INT64_MAX);
  CHECK(ms("2562047788015h") == 2'562'047'788'015 * 3'600'000);
}

TEST_CASE("durations that overflow int64 milliseconds are rejected") {
  CHECK(ms("9223372036854775808ms") == -1);
  CHECK(ms("9223372036854775.8071s") == -1);
  CHECK(ms("9223372036854775.808s") == -1);
  CHECK(ms("9223372036854776s") == -1);
  CHECK(ms("2562047788016h") == -1);
  CHECK(ms("153722867280913m") == -1);
  CHECK(ms("99999999999999999999999999999999s") == -1);
  CHECK(ms("18446744073709551616ms") == -1);
}

TEST_CASE("durations without a known unit are rejected") {
  for (auto s : strings{"",     "5",     "s",
                        "ms",   "5S",    "5MS",
                        "5sec", "5 s",   " 5s",
                        "5s ",  "5ss",   "5d",
                        "5hr",  "5mins", "5us",
                        "5ns",  "1.5",   "5s5",
                        "5mh",  "5s\n",  std::string_view{"5s\0", 3}})
    CHECK_MESSAGE(ms(s) == -1, std::string{s});
}

TEST_CASE(
    "durations with signs, exponents, hex or bad fractions are rejected") {
  for (auto s : strings{"-5s", "+5s", "-0s", "1e3ms", "1E3ms", "0x10s",
                        "0x1Fms", ".5s", "5.s", "1..5s", "1.5.5s", "1,5s",
                        "inf s", "infs", "nans", "١s", "5\xC2\xA0s"})
    CHECK_MESSAGE(ms(s) == -1, std::string{s});
}

TEST_CASE("sizes take plain bytes, B, KiB, MiB and GiB") {
  CHECK(parse_size("0") == std::optional<uint64_t>{0});
  CHECK(parse_size("100") == std::optional<uint64_t>{100});
  CHECK(parse_size("100B") == std::optional<uint64_t>{100});
  CHECK(parse_size("256KiB") == std::optional<uint64_t>{262'144});
  CHECK(parse_size("1MiB") == std::optional<uint64_t>{1'048'576});
  CHECK(parse_size("3GiB") == std::optional<uint64_t>{3'221'225'472});
  CHECK(parse_size("0064KiB") == std::optional<uint64_t>{65'536});
}

TEST_CASE("sizes up to uint64 are accepted and larger ones rejected") {
  CHECK(parse_size("18446744073709551615")
        == std::optional<uint64_t>{UINT64_MAX});
  CHECK(parse_size("18446744073709551615B")
        == std::optional<uint64_t>{UINT64_MAX});
  CHECK(parse_size("18446744073709551616") == std::nullopt);
  CHECK(parse_size("17179869183GiB")
        == std::optional<uint64_t>{17'179'869'183ULL << 30});
  CHECK(parse_size("17179869184GiB") == std::nullopt);
  CHECK(parse_size("18014398509481984KiB") == std::nullopt);
  CHECK(parse_size("99999999999999999999999999") == std::nullopt);
}

TEST_CASE("sizes in any other form are rejected") {
  for (auto s :
       strings{"",    "B",  "KiB",  "-1",  "+1",  "1.5KiB", "1 KiB", " 1",
               "1 ",  "1K", "1k",   "1KB", "1kb", "1kib",   "1KIB",  "1M",
               "1MB", "1G", "1TiB", "1b",  "1e3", "0x10",   "1BB",   "1KiBB"})
    CHECK_MESSAGE(parse_size(s) == std::nullopt, std::string{s});
}

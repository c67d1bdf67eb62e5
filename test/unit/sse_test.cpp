#include "core/sse.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

using namespace btcstream;

namespace {

// 2026-11-26T18:45:17.123Z, the example in DESIGN.md.
constexpr int64_t example_ms = 1'795'718'717'123;

const update example{example_ms, example_ms, 97123.45};

// The reference: the C library for the same instant (seconds), plus ms.
std::string via_gmtime(int64_t ms) {
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof(frac), ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf, n) + frac;
}

} // namespace

// -- timestamps ---------------------------------------------------------------

TEST_CASE("timestamps are RFC 3339 UTC with milliseconds") {
  CHECK(format_timestamp(example_ms) == "2026-11-26T18:45:17.123Z");
  CHECK(format_timestamp(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_timestamp(1) == "1970-01-01T00:00:00.001Z");
  CHECK(format_timestamp(999) == "1970-01-01T00:00:00.999Z");
  CHECK(format_timestamp(86'399'999) == "1970-01-01T23:59:59.999Z");
  CHECK(format_timestamp(86'400'000) == "1970-01-02T00:00:00.000Z");
}

TEST_CASE("timestamps get leap days right") {
  CHECK(format_timestamp(1'709'208'000'000) == "2024-02-29T12:00:00.000Z");
  CHECK(format_timestamp(951'868'800'000 - 1) == "2000-02-29T23:59:59.999Z");
  CHECK(format_timestamp(951'868'800'000) == "2000-03-01T00:00:00.000Z");
  // 2100 is not a leap year: 28 February is followed by 1 March.
  CHECK(format_timestamp(4'107'456'000'000) == "2100-02-28T00:00:00.000Z");
  CHECK(format_timestamp(4'107'542'400'000) == "2100-03-01T00:00:00.000Z");
}

TEST_CASE("timestamps agree with gmtime across two centuries") {
  // A stride coprime with days and seconds visits every field value.
  int mismatches = 0;
  for (int64_t ms = 0; ms < 7'258'118'400'000; ms += 9'876'543'211) {
    if (format_timestamp(ms) != via_gmtime(ms)) {
      ++mismatches;
      MESSAGE(ms, " ", format_timestamp(ms), " != ", via_gmtime(ms));
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("timestamps cover every int64 millisecond") {
  CHECK(format_timestamp(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
  CHECK(format_timestamp(253'402'300'800'000) == "10000-01-01T00:00:00.000Z");
  // The same instant as java.time.Instant.ofEpochMilli(Long.MAX_VALUE).
  CHECK(format_timestamp(std::numeric_limits<int64_t>::max())
        == "292278994-08-17T07:12:55.807Z");
}

TEST_CASE("timestamps before 1970 round down to the earlier millisecond") {
  CHECK(format_timestamp(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(format_timestamp(-86'400'000) == "1969-12-31T00:00:00.000Z");
  CHECK(format_timestamp(-62'135'596'800'000) == "0001-01-01T00:00:00.000Z");
}

// -- prices -------------------------------------------------------------------

TEST_CASE("prices are the shortest text that reads back the same") {
  CHECK(format_price(97123.45) == "97123.45");
  CHECK(format_price(1) == "1");
  CHECK(format_price(0.1) == "0.1");
  CHECK(format_price(123456789012.34) == "123456789012.34");
  CHECK(format_price(0.30000000000000004) == "0.30000000000000004");
}

TEST_CASE("prices between 1e-6 and 1e21 are never in exponent form") {
  // Round numbers are likely prices: 100000, not 1e+05.
  CHECK(format_price(100000) == "100000");
  CHECK(format_price(1e20) == "100000000000000000000");
  CHECK(format_price(0.000001) == "0.000001");
  CHECK(format_price(0.0000012345) == "0.0000012345");
  CHECK(format_price(0) == "0");
  CHECK(format_price(-2.5) == "-2.5");
}

TEST_CASE("very large and very small prices stay valid JSON numbers") {
  CHECK(format_price(1e21) == "1e+21");
  CHECK(format_price(1e-7) == "1e-07");
  CHECK(format_price(5e-324) == "5e-324");
  CHECK(format_price(std::numeric_limits<double>::max())
        == "1.7976931348623157e+308");
  for (auto x : {1e21, 1e-7, 5e-324, 1.7976931348623157e308, 97123.45}) {
    auto j = nlohmann::json::parse(format_price(x));
    CHECK(j.is_number());
    CHECK(j.get<double>() == x);
  }
}

TEST_CASE("prices round-trip through strtod") {
  // Doubles spread over many magnitudes; any mismatch is a lost digit.
  uint64_t bits = 0x3ff0000000000001ULL;
  int mismatches = 0;
  for (int i = 0; i < 10'000; ++i) {
    bits = bits * 6364136223846793005ULL + 1442695040888963407ULL;
    double x = 0;
    auto candidate = (bits >> 2) & 0x7fefffffffffffffULL; // finite, >= 0
    std::memcpy(&x, &candidate, sizeof(x));
    auto text = format_price(x);
    if (std::strtod(text.c_str(), nullptr) != x)
      ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("a non-finite price becomes null rather than invalid JSON") {
  CHECK(format_price(std::numeric_limits<double>::infinity()) == "null");
  CHECK(format_price(-std::numeric_limits<double>::infinity()) == "null");
  CHECK(format_price(std::nan("")) == "null");
}

// -- frames -------------------------------------------------------------------

TEST_CASE("the data line of an update holds timestamp and price") {
  CHECK(update_data_json(example)
        == R"({"timestamp":"2026-11-26T18:45:17.123Z","price":97123.45})");
}

TEST_CASE("the REST form of an update adds its id") {
  CHECK(update_json(example)
        == R"({"id":1795718717123,"timestamp":"2026-11-26T18:45:17.123Z",)"
           R"("price":97123.45})");
  update big{UINT64_MAX, 0, 1};
  CHECK(update_json(big)
        == R"({"id":18446744073709551615,"timestamp":)"
           R"("1970-01-01T00:00:00.000Z","price":1})");
}

TEST_CASE("an update frame is an id line, a data line and a blank line") {
  auto f = encode_update(example);
  REQUIRE(f);
  CHECK(f->text()
        == "id: 1795718717123\n"
           "data: {\"timestamp\":\"2026-11-26T18:45:17.123Z\","
           "\"price\":97123.45}\n\n");
}

TEST_CASE("each update frame is parseable JSON after the data prefix") {
  auto f = encode_update(update{42, 1000, 1e21});
  auto data_at = f->text().find("data: ");
  REQUIRE(data_at != std::string::npos);
  auto line = f->text().substr(data_at + 6, f->size() - data_at - 8);
  auto j = nlohmann::json::parse(line);
  CHECK(j["timestamp"] == "1970-01-01T00:00:01.000Z");
  CHECK(j["price"].get<double>() == 1e21);
}

TEST_CASE("a gap event names the resume point and the oldest buffered id") {
  CHECK(encode_gap("1795718717123", 1'795'718'722'123)->text()
        == "event: gap\n"
           "data: {\"requested\":\"1795718717123\",\"oldest\":1795718722123}"
           "\n\n");
  CHECK(
      encode_gap("1795718700.5", 7)->text()
      == "event: gap\ndata: {\"requested\":\"1795718700.5\",\"oldest\":7}\n\n");
}

TEST_CASE("a gap event with an empty buffer has a null oldest") {
  CHECK(encode_gap("42", std::nullopt)->text()
        == "event: gap\ndata: {\"requested\":\"42\",\"oldest\":null}\n\n");
  CHECK(encode_gap("", std::nullopt)->text()
        == "event: gap\ndata: {\"requested\":\"\",\"oldest\":null}\n\n");
}

TEST_CASE("the requested value is escaped and cannot break the frame") {
  CHECK(encode_gap("a\"b\\c\nd", 1)->text()
        == "event: gap\ndata: {\"requested\":\"a\\\"b\\\\c\\nd\",\"oldest\":1}"
           "\n\n");
  CHECK(encode_gap("\r\x01", 1)->text()
        == "event: gap\ndata: {\"requested\":\"\\r\\u0001\",\"oldest\":1}\n\n");
}

TEST_CASE("invalid UTF-8 in the requested value is replaced, not thrown") {
  CHECK(encode_gap("a\xFF", 1)->text()
        == "event: gap\ndata: {\"requested\":\"a\xEF\xBF\xBD\",\"oldest\":1}"
           "\n\n");
}

TEST_CASE("the retry line carries milliseconds") {
  CHECK(encode_retry(std::chrono::milliseconds{3000}) == "retry: 3000\n\n");
  CHECK(encode_retry(std::chrono::milliseconds{0}) == "retry: 0\n\n");
  CHECK(encode_retry(std::chrono::seconds{2}) == "retry: 2000\n\n");
}

TEST_CASE("the heartbeat is one shared comment frame") {
  auto& a = heartbeat_frame();
  auto& b = heartbeat_frame();
  REQUIRE(a);
  CHECK(a->text() == ": hb\n\n");
  CHECK(a.get() == b.get());
}

TEST_CASE("a frame is kept as one HTTP/1.1 chunk, its text in the middle") {
  auto f = make_frame("retry: 3000\n\n");
  CHECK(f->text() == "retry: 3000\n\n");
  CHECK(f->size() == 13);
  CHECK(f->chunk() == "d\r\nretry: 3000\n\n\r\n");
  std::string big(300, 'x');
  auto g = make_frame(big);
  CHECK(g->chunk() == "12c\r\n" + big + "\r\n");
  CHECK(g->text() == big);
}

TEST_CASE("an empty frame has no chunk: a zero-size one would end a stream") {
  auto f = make_frame("");
  CHECK(f->text().empty());
  CHECK(f->chunk().empty());
  CHECK(f->size() == 0);
}

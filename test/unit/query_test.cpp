#include "core/query.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace btcstream;

namespace {

using strings = std::initializer_list<std::string_view>;
using params = std::vector<std::pair<std::string, std::string>>;

// 2026-11-26T18:45:17.123Z.
constexpr int64_t now = 1'795'718'717'123;
constexpr int64_t day = 86'400'000;

target query(std::string_view raw) {
  auto t = parse_target(raw);
  REQUIRE(t);
  return *t;
}

resume_choice choose(std::optional<std::string_view> header,
                     std::string_view raw, int64_t now_ms = now) {
  return choose_resume_point(header, query(raw), now_ms);
}

} // namespace

// -- parse_target -------------------------------------------------------------

TEST_CASE("a target without a query is just a path") {
  auto t = query("/stream");
  CHECK(t.path == "/stream");
  CHECK(t.params.empty());
  CHECK(query("/").path == "/");
}

TEST_CASE("a query splits on ampersands and then on the first equals sign") {
  auto t = query("/stream?since=1.5&lastEventId=42&x=a=b");
  CHECK(t.path == "/stream");
  CHECK(t.params
        == params{{"since", "1.5"}, {"lastEventId", "42"}, {"x", "a=b"}});
}

TEST_CASE("parameters without a value have an empty value") {
  CHECK(query("/p?a&b=").params == params{{"a", ""}, {"b", ""}});
  CHECK(query("/p?=v").params == params{{"", "v"}});
  CHECK(query("/p?").params.empty());
}

TEST_CASE("empty pieces between ampersands are skipped") {
  CHECK(query("/p?&&a=1&&b=2&").params == params{{"a", "1"}, {"b", "2"}});
  CHECK(query("/p?&").params.empty());
}

TEST_CASE("only the first question mark splits path from query") {
  auto t = query("/p?a=1?b=2");
  CHECK(t.path == "/p");
  CHECK(t.params == params{{"a", "1?b=2"}});
}

TEST_CASE("the path and the parameters are percent-decoded") {
  auto t = query("/a%20b/%C3%A9?k%65y=v%2Fw&x=%25%26%3D");
  CHECK(t.path == "/a b/\xC3\xA9");
  CHECK(t.params == params{{"key", "v/w"}, {"x", "%&="}});
  CHECK(query("/%2e%2E/").path == "/../");
}

TEST_CASE("plus decodes to a space in the query only") {
  auto t = query("/a+b?x+y=1+2&z=%2B");
  CHECK(t.path == "/a+b");
  CHECK(t.params == params{{"x y", "1 2"}, {"z", "+"}});
}

TEST_CASE("an encoded ampersand or equals sign does not split") {
  CHECK(query("/p?a%26b=c%3Dd").params == params{{"a&b", "c=d"}});
}

TEST_CASE("param returns the first value of a repeated parameter") {
  auto t = query("/p?a=1&b=2&a=3&e");
  CHECK(t.param("a") == std::optional<std::string_view>{"1"});
  CHECK(t.param("b") == std::optional<std::string_view>{"2"});
  CHECK(t.param("e") == std::optional<std::string_view>{""});
  CHECK(t.param("c") == std::nullopt);
  CHECK(t.param("A") == std::nullopt);
}

TEST_CASE("targets not in origin form are rejected") {
  for (auto s : strings{"", "stream", "*", "http://h/p", "?a=1", " /p"})
    CHECK_MESSAGE(parse_target(s) == std::nullopt, std::string{s});
}

TEST_CASE("a request target may also come in absolute form") {
  // RFC 9112 3.2.2: what a proxy is sent, and a server must accept.
  auto t = parse_request_target("http://example.com:8080/stream?since=5");
  REQUIRE(t);
  CHECK(t->path == "/stream");
  CHECK(t->param("since") == std::optional<std::string_view>{"5"});
  auto upper = parse_request_target("HTTPS://h/api/v1/price");
  REQUIRE(upper);
  CHECK(upper->path == "/api/v1/price");
  // An empty path is "/".
  for (auto s : strings{"http://h", "http://h?x=1"}) {
    auto root = parse_request_target(s);
    REQUIRE_MESSAGE(root, std::string{s});
    CHECK(root->path == "/");
  }
  CHECK(parse_request_target("http://h?x=1")->param("x")
        == std::optional<std::string_view>{"1"});
  // The origin form as before; anything else is still refused.
  CHECK(parse_request_target("/a?b=1")->path == "/a");
  for (auto s :
       strings{"", "*", "ftp://h/p", "http:/h/p", "h/p", "http://h/%zz"})
    CHECK_MESSAGE(parse_request_target(s) == std::nullopt, std::string{s});
}

TEST_CASE("repeated names the first of its keys given more than once") {
  auto t = query("/p?a=1&b=2&a=3&c=4&c=5");
  CHECK(t.repeated({"b"}) == std::nullopt);
  CHECK(t.repeated({"b", "c", "a"}) == std::optional<std::string_view>{"c"});
  CHECK(t.repeated({"d"}) == std::nullopt);
}

TEST_CASE("bad percent escapes are rejected in path and query") {
  for (auto s :
       strings{"/%", "/%2", "/%zz", "/%g0", "/%0g", "/a%", "/p?a=%", "/p?a=%4",
               "/p?%=1", "/p?a=%%41", "/p?a=1&b=%x1", "/%%"})
    CHECK_MESSAGE(parse_target(s) == std::nullopt, std::string{s});
}

TEST_CASE("a NUL byte, encoded or raw, is rejected") {
  CHECK(parse_target("/a%00b") == std::nullopt);
  CHECK(parse_target("/p?a=%00") == std::nullopt);
  CHECK(parse_target("/p?%00=1") == std::nullopt);
  CHECK(parse_target(std::string_view{"/a\0b", 4}) == std::nullopt);
  CHECK(parse_target(std::string_view{"/p?a=\0", 6}) == std::nullopt);
}

TEST_CASE("other decoded bytes pass through unchanged") {
  auto t = query("/p?a=%01%7F%FF%0A");
  CHECK(t.params == params{{"a", "\x01\x7F\xFF\n"}});
}

// -- parse_event_id -----------------------------------------------------------

TEST_CASE("event ids are 1 to 20 decimal digits") {
  CHECK(parse_event_id("0") == std::optional<uint64_t>{0});
  CHECK(parse_event_id("1795718717123")
        == std::optional<uint64_t>{1'795'718'717'123});
  CHECK(parse_event_id("00042") == std::optional<uint64_t>{42});
  CHECK(parse_event_id("00000000000000000042") == std::optional<uint64_t>{42});
  CHECK(parse_event_id("18446744073709551615")
        == std::optional<uint64_t>{UINT64_MAX});
}

TEST_CASE("event ids that overflow uint64 or have 21 digits are rejected") {
  CHECK(parse_event_id("18446744073709551616") == std::nullopt);
  CHECK(parse_event_id("99999999999999999999") == std::nullopt);
  CHECK(parse_event_id("000000000000000000042") == std::nullopt);
  CHECK(parse_event_id("123456789012345678901") == std::nullopt);
}

TEST_CASE("event ids in any other form are rejected") {
  for (auto s : strings{"", " ", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1",
                        "abc", "1a", "١", "1\n", "-0"})
    CHECK_MESSAGE(parse_event_id(s) == std::nullopt, std::string{s});
  CHECK(parse_event_id(std::string_view{"1\0", 2}) == std::nullopt);
}

// -- parse_since_ms -----------------------------------------------------------

TEST_CASE("since in whole seconds becomes milliseconds") {
  CHECK(parse_since_ms("0") == std::optional<int64_t>{0});
  CHECK(parse_since_ms("1795718717")
        == std::optional<int64_t>{1'795'718'717'000});
  CHECK(parse_since_ms("007") == std::optional<int64_t>{7000});
}

TEST_CASE("a since fraction is exact to the millisecond") {
  CHECK(parse_since_ms("1795718717.123")
        == std::optional<int64_t>{1'795'718'717'123});
  CHECK(parse_since_ms("1.5") == std::optional<int64_t>{1500});
  CHECK(parse_since_ms("1.05") == std::optional<int64_t>{1050});
  CHECK(parse_since_ms("0.001") == std::optional<int64_t>{1});
  CHECK(parse_since_ms("1.000000") == std::optional<int64_t>{1000});
  // 0.3 * 1000 in binary floating point is 300.00000000000006: ceil 301.
  CHECK(parse_since_ms("0.3") == std::optional<int64_t>{300});
  CHECK(parse_since_ms("1795718717.123000000000000000")
        == std::optional<int64_t>{1'795'718'717'123});
}

TEST_CASE("a since between milliseconds rounds up") {
  // ts_ms >= result must hold exactly when ts_ms / 1000 >= since.
  CHECK(parse_since_ms("1795718717.1231")
        == std::optional<int64_t>{1'795'718'717'124});
  CHECK(parse_since_ms("0.0001") == std::optional<int64_t>{1});
  CHECK(parse_since_ms("1.9999") == std::optional<int64_t>{2000});
  CHECK(parse_since_ms("0.0000000000000000000000000001")
        == std::optional<int64_t>{1});
}

TEST_CASE("a since that overflows int64 milliseconds is rejected") {
  CHECK(parse_since_ms("9223372036854775.807")
        == std::optional<int64_t>{INT64_MAX});
  CHECK(parse_since_ms("9223372036854775.8069")
        == std::optional<int64_t>{INT64_MAX});
  CHECK(parse_since_ms("9223372036854775.8071") == std::nullopt);
  CHECK(parse_since_ms("9223372036854775.808") == std::nullopt);
  CHECK(parse_since_ms("9223372036854776") == std::nullopt);
  CHECK(parse_since_ms("99999999999999999999999") == std::nullopt);
}

TEST_CASE("since in any other form is rejected") {
  for (auto s :
       strings{"",      ".",    ".5",   "5.",   "-1",   "+1",       "-0", "1e3",
               "1E3",   "0x10", "nan",  "NaN",  "inf",  "Infinity", " 1", "1 ",
               "1.2.3", "1,5",  "1..2", "1.-2", "1.+2", "1.e2",     "١"})
    CHECK_MESSAGE(parse_since_ms(s) == std::nullopt, std::string{s});
}

// -- choose_resume_point ------------------------------------------------------

TEST_CASE("no resume point means the latest update") {
  auto c = choose(std::nullopt, "/stream");
  REQUIRE(c.point);
  CHECK(c.error.empty());
  CHECK(c.point->what == resume_point::kind::latest);
  CHECK(c.point->given.empty());
}

TEST_CASE("the Last-Event-ID header resumes after its id") {
  auto c = choose("1795718717123", "/stream");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::after_id);
  CHECK(c.point->id == 1'795'718'717'123u);
  CHECK(c.point->given == "1795718717123");
}

TEST_CASE("the header wins over lastEventId and since") {
  auto c = choose("7", "/stream?lastEventId=8&since=9");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::after_id);
  CHECK(c.point->id == 7u);
  CHECK(c.point->given == "7");
}

TEST_CASE("lastEventId wins over since") {
  auto c = choose(std::nullopt, "/stream?since=9&lastEventId=0008");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::after_id);
  CHECK(c.point->id == 8u);
  CHECK(c.point->given == "0008");
}

TEST_CASE("a malformed header is an error even with a good parameter") {
  for (auto h : strings{"", " ", "abc", "-1", "1.5", "18446744073709551616"}) {
    auto c = choose(h, "/stream?lastEventId=8");
    CHECK_MESSAGE(!c.point, std::string{h});
    CHECK(c.error == "invalid Last-Event-ID");
  }
}

TEST_CASE("a resume parameter given twice is an error, whatever the values") {
  for (auto q : strings{"/stream?since=5&since=x", "/stream?since=x&since=5",
                        "/stream?since=5&since=5",
                        "/stream?lastEventId=1&lastEventId=2"}) {
    auto c = choose(std::nullopt, q);
    CHECK_MESSAGE(!c.point, std::string{q});
    CHECK(c.error.find("given more than once") != std::string::npos);
  }
  // Even where the header would win: the request is malformed.
  auto c = choose("7", "/stream?since=1&since=2");
  CHECK(!c.point);
  CHECK(c.error == "since given more than once");
}

TEST_CASE("a malformed lastEventId is an error even with a good since") {
  for (auto q : strings{"/stream?lastEventId",
                        "/stream?lastEventId=", "/stream?lastEventId=x&since=1",
                        "/stream?lastEventId=%2B1"}) {
    auto c = choose(std::nullopt, q);
    CHECK_MESSAGE(!c.point, std::string{q});
    CHECK(c.error == "invalid lastEventId");
  }
}

TEST_CASE("since in the past resumes by timestamp") {
  auto c = choose(std::nullopt, "/stream?since=1795718700.5");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::since);
  CHECK(c.point->since_ms == 1'795'718'700'500);
  CHECK(c.point->given == "1795718700.5");
}

TEST_CASE("since equal to now is a replay, not live") {
  auto c = choose(std::nullopt, "/stream?since=1795718717.123");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::since);
  CHECK(c.point->since_ms == now);
}

TEST_CASE("since in the future within a day is live only") {
  auto c = choose(std::nullopt, "/stream?since=1795718717.124");
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::live);
  CHECK(c.point->since_ms == now + 1);
  CHECK(c.point->given == "1795718717.124");
  // Exactly one day ahead is still allowed.
  auto edge = choose(std::nullopt, "/stream?since=1795805117.123");
  REQUIRE(edge.point);
  CHECK(edge.point->what == resume_point::kind::live);
  CHECK(edge.point->since_ms == now + day);
}

TEST_CASE("since more than a day in the future is an error") {
  auto c = choose(std::nullopt, "/stream?since=1795805117.124");
  CHECK(!c.point);
  CHECK(c.error == "since is more than a day in the future");
  auto far = choose(std::nullopt, "/stream?since=9223372036854775");
  CHECK(far.error == "since is more than a day in the future");
}

TEST_CASE("a clock near the int64 limit does not overflow the horizon") {
  auto c = choose(std::nullopt, "/stream?since=9223372036854775",
                  INT64_MAX - 1000);
  REQUIRE(c.point);
  CHECK(c.point->what == resume_point::kind::live);
  auto past = choose(std::nullopt, "/stream?since=9223372036854775", INT64_MAX);
  REQUIRE(past.point);
  CHECK(past.point->what == resume_point::kind::since);
}

TEST_CASE("malformed since values are errors") {
  for (auto q :
       strings{"/stream?since", "/stream?since=", "/stream?since=-1",
               "/stream?since=0x10", "/stream?since=1e9", "/stream?since=NaN",
               "/stream?since=+5", "/stream?since=1+2",
               "/stream?since=99999999999999999"
               "999"}) {
    auto c = choose(std::nullopt, q);
    CHECK_MESSAGE(!c.point, std::string{q});
    CHECK(c.error == "invalid since");
  }
}

TEST_CASE("the given value is the decoded parameter") {
  auto c = choose(std::nullopt, "/stream?since=%31%2E5");
  REQUIRE(c.point);
  CHECK(c.point->since_ms == 1500);
  CHECK(c.point->given == "1.5");
}

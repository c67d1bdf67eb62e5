#include "core/url.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>

using namespace btcstream;

namespace {

using strings = std::initializer_list<std::string_view>;

// The default upstream of DESIGN.md.
constexpr std::string_view coindesk
    = "https://data-api.coindesk.com/index/cc/v1/latest/tick?market=ccix"
      "&instruments=BTC-USD";

url must_parse(std::string_view s) {
  auto u = parse_url(s);
  REQUIRE_MESSAGE(u, std::string{s});
  return *u;
}

} // namespace

TEST_CASE("the default upstream URL splits into scheme, host, port, target") {
  auto u = must_parse(coindesk);
  CHECK(u.scheme == "https");
  CHECK(u.host == "data-api.coindesk.com");
  CHECK(u.port == "443");
  CHECK(u.target == "/index/cc/v1/latest/tick?market=ccix&instruments=BTC-USD");
  CHECK(u.instrument() == "BTC-USD");
}

TEST_CASE("http defaults to port 80 and https to 443") {
  CHECK(must_parse("http://example.com/").port == "80");
  CHECK(must_parse("https://example.com/").port == "443");
}

TEST_CASE("an explicit port is kept, without leading zeros") {
  auto u = must_parse("http://127.0.0.1:8080/tick");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == "8080");
  CHECK(u.target == "/tick");
  CHECK(must_parse("https://h:1").port == "1");
  CHECK(must_parse("https://h:65535").port == "65535");
  CHECK(must_parse("http://h:08080").port == "8080");
}

TEST_CASE("the target defaults to a slash") {
  CHECK(must_parse("http://h").target == "/");
  CHECK(must_parse("http://h:81").target == "/");
  CHECK(must_parse("http://h/").target == "/");
  CHECK(must_parse("http://h?a=1").target == "/?a=1");
  CHECK(must_parse("http://h:81?a=1").target == "/?a=1");
}

TEST_CASE("the scheme is matched without regard to case") {
  auto u = must_parse("HTTPS://Example.COM/Path");
  CHECK(u.scheme == "https");
  CHECK(u.host == "Example.COM");
  CHECK(u.target == "/Path");
  CHECK(must_parse("Http://h").scheme == "http");
}

TEST_CASE("IPv6 literals are bracketed in the URL and bare in host") {
  auto u = must_parse("http://[::1]:8080/tick?x=1");
  CHECK(u.host == "::1");
  CHECK(u.port == "8080");
  CHECK(u.target == "/tick?x=1");
  auto v = must_parse("https://[2001:db8::a:B:1.2.3.4]");
  CHECK(v.host == "2001:db8::a:B:1.2.3.4");
  CHECK(v.port == "443");
  CHECK(v.target == "/");
}

TEST_CASE("a percent-encoded target is kept as given") {
  auto u = must_parse("http://h/a%20b?x=%2F");
  CHECK(u.target == "/a%20b?x=%2F");
}

TEST_CASE("other schemes and relative forms are rejected") {
  for (auto s : strings{"", "ftp://h/", "ws://h/", "redis://h:6379",
                        "file:///etc/passwd", "httpx://h", "http:/h", "http:h",
                        "//h/p", "h/p", "/p", "http//h", "https:://h"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
}

TEST_CASE("user info is rejected, so no secret sits in a URL") {
  for (auto s : strings{"http://user@h/", "http://user:pw@h/", "http://@h/",
                        "https://h:443@evil/", "http://[::1]@h/"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
  // An @ in the path or query is not user info.
  CHECK(must_parse("http://h/a@b?c=@").target == "/a@b?c=@");
}

TEST_CASE("fragments are rejected") {
  for (auto s :
       strings{"http://h/#x", "http://h#x", "http://h/p?q#", "http://h#"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
}

TEST_CASE("an empty host is rejected") {
  for (auto s : strings{"http://", "http:///p", "http://:80/", "http://?a",
                        "http://[]:80/", "http://[]"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
}

TEST_CASE("bad ports are rejected") {
  for (auto s :
       strings{"http://h:/", "http://h:0/", "http://h:65536/",
               "http://h:99999/", "http://h:123456/", "http://h:-1/",
               "http://h:+80/", "http://h:8o/", "http://h:80:81/",
               "http://h: 80/", "http://[::1]:/", "http://[::1]:0",
               "http://[::1]x", "http://[::1]:80x", "http://h:000000080/"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
}

TEST_CASE("malformed IPv6 literals are rejected") {
  for (auto s :
       strings{"http://[::1/", "http://[::1", "http://::1/", "http://[::g]/",
               "http://[fe80::1%25eth0]/", "http://h]/", "http://h[/"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
}

TEST_CASE("white space, control bytes and bad escapes are rejected") {
  for (auto s : strings{"http://h /", " http://h/", "http://h/ ",
                        "http://h/a b", "http://h/\n", "http://h\t/",
                        "http://h/\x7f", "http://h/%zz", "http://h/?a=%"})
    CHECK_MESSAGE(parse_url(s) == std::nullopt, std::string{s});
  CHECK(parse_url(std::string_view{"http://h/\0", 10}) == std::nullopt);
}

TEST_CASE("the instrument comes from the instruments parameter") {
  CHECK(must_parse("http://h/t?instruments=ETH-USD").instrument() == "ETH-USD");
  CHECK(
      must_parse("http://h/t?market=ccix&instruments=BTC-EUR&x=1").instrument()
      == "BTC-EUR");
}

TEST_CASE("the instrument is percent-decoded") {
  CHECK(must_parse("http://h/t?instruments=BTC%2DUSD").instrument()
        == "BTC-USD");
  CHECK(must_parse("http://h/t?instruments=A+B").instrument() == "A B");
}

TEST_CASE("of several instruments the first is used") {
  CHECK(must_parse("http://h/t?instruments=ETH-USD,BTC-USD").instrument()
        == "ETH-USD");
  CHECK(must_parse("http://h/t?instruments=ETH-USD%2CBTC-USD").instrument()
        == "ETH-USD");
  CHECK(must_parse("http://h/t?instruments=SOL-USD&instruments=ETH-USD")
            .instrument()
        == "SOL-USD");
}

TEST_CASE("without an instrument the default is BTC-USD") {
  CHECK(must_parse("http://h/t").instrument() == "BTC-USD");
  CHECK(must_parse("http://h/t?market=ccix").instrument() == "BTC-USD");
  CHECK(must_parse("http://h/t?instruments=").instrument() == "BTC-USD");
  CHECK(must_parse("http://h/t?instruments").instrument() == "BTC-USD");
  CHECK(must_parse("http://h/t?instruments=,ETH-USD").instrument()
        == "BTC-USD");
  CHECK(must_parse("http://h/t?Instruments=ETH-USD").instrument() == "BTC-USD");
}

TEST_CASE("a hand-built url with a bad target falls back to BTC-USD") {
  url u;
  u.target = "/t?instruments=%zz";
  CHECK(u.instrument() == "BTC-USD");
}

TEST_CASE("an api_key in the query is redacted for logs, nothing else is") {
  CHECK(redact_url("https://h/p?market=ccix&api_key=s3cret&x=1")
        == "https://h/p?market=ccix&api_key=<redacted>&x=1");
  CHECK(redact_url("https://h/p?API_KEY=s3cret")
        == "https://h/p?API_KEY=<redacted>");
  CHECK(redact_url("https://h/p?api_key=a&api_key=b")
        == "https://h/p?api_key=<redacted>&api_key=<redacted>");
  CHECK(redact_url("https://h/p?my_api_key=1&api_keys=2&api_key")
        == "https://h/p?my_api_key=1&api_keys=2&api_key");
  CHECK(redact_url("https://h/p") == "https://h/p");
  CHECK(redact_url("https://h/p?") == "https://h/p?");
}

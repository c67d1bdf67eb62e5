#include "core/redis_url.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace btcstream;

namespace {

redis_endpoint must_parse(std::string_view s) {
  std::string error;
  auto ep = parse_redis_url(s, &error);
  REQUIRE_MESSAGE(ep, (std::string{s} + ": " + error));
  return *ep;
}

// Fails, and the reason never quotes the secret.
std::string must_fail(std::string_view s, std::string_view secret = "s3cr") {
  std::string error;
  auto ep = parse_redis_url(s, &error);
  CHECK_MESSAGE(!ep, std::string{s});
  CHECK_FALSE(error.empty());
  CHECK(error.find(secret) == std::string::npos);
  return error;
}

} // namespace

TEST_CASE("host only: port 6379, db 0, no credentials") {
  auto ep = must_parse("redis://localhost");
  CHECK(ep.host == "localhost");
  CHECK(ep.port == 6379);
  CHECK(ep.db == 0);
  CHECK(ep.user.empty());
  CHECK(ep.password.empty());
  CHECK(ep.describe() == "redis://localhost:6379/0");
}

TEST_CASE("port and db") {
  auto ep = must_parse("redis://10.0.0.7:7000/15");
  CHECK(ep.host == "10.0.0.7");
  CHECK(ep.port == 7000);
  CHECK(ep.db == 15);
  CHECK(must_parse("redis://h/").db == 0);
  CHECK(must_parse("redis://h:1/0").port == 1);
  CHECK(must_parse("redis://h:65535").port == 65535);
  CHECK(must_parse("redis://h/07").db == 7);
}

TEST_CASE("password without a user, and with one") {
  auto ep = must_parse("redis://:s3cr@h:1/2");
  CHECK(ep.user.empty());
  CHECK(ep.password == "s3cr");
  CHECK(ep.describe() == "redis://:***@h:1/2");
  ep = must_parse("redis://alice:s3cr@h");
  CHECK(ep.user == "alice");
  CHECK(ep.password == "s3cr");
  CHECK(ep.describe() == "redis://alice:***@h:6379/0");
  CHECK(ep.describe().find("s3cr") == std::string::npos);
}

TEST_CASE("the password is percent-decoded; raw '@', ':' and '/' stay in it") {
  CHECK(must_parse("redis://:a%40b%3Ac%2fd%25@h").password == "a@b:c/d%");
  CHECK(must_parse("redis://:a@b:c/d@h:5/3").password == "a@b:c/d");
  CHECK(must_parse("redis://:a@b:c/d@h:5/3").port == 5);
  CHECK(must_parse("redis://:p+q@h").password == "p+q");
  CHECK(must_parse("redis://al%69ce:x@h").user == "alice");
}

TEST_CASE("IPv6 literals in brackets") {
  auto ep = must_parse("redis://[::1]:6380/1");
  CHECK(ep.host == "::1");
  CHECK(ep.port == 6380);
  CHECK(ep.db == 1);
  CHECK(ep.describe() == "redis://[::1]:6380/1");
  CHECK(must_parse("redis://[fe80::1:2]").port == 6379);
}

TEST_CASE("bad URLs fail with a reason") {
  must_fail("");
  must_fail("http://h");
  must_fail("rediss://h");
  must_fail("REDIS://h");
  must_fail("redis://");
  must_fail("redis://:6379");
  must_fail("redis://h:");
  must_fail("redis://h:0");
  must_fail("redis://h:65536");
  must_fail("redis://h:123456");
  must_fail("redis://h:-1");
  must_fail("redis://h:8a");
  must_fail("redis://h/16");
  must_fail("redis://h/100");
  must_fail("redis://h/-1");
  must_fail("redis://h/1?x=y");
  must_fail("redis://h/a");
  must_fail("redis://h /1");
  must_fail("redis://[::1");
  must_fail("redis://[]");
  must_fail("redis://[::1]x");
  must_fail("redis://[::1]:");
  must_fail("redis://[zz::1]");
}

TEST_CASE("bad user info fails without quoting the password") {
  must_fail("redis://s3cr@h");
  must_fail("redis://:s3cr%@h");
  must_fail("redis://:s3cr%4@h");
  must_fail("redis://:s3cr%zz@h");
  must_fail("redis://:@h");
  must_fail("redis://u:@h");
  must_fail("redis://:s3cr@h:99999");
  must_fail("redis://:s3cr@/0");
  must_fail("redis://:s3cr@h/99");
}

TEST_CASE("the error pointer is optional") {
  CHECK_FALSE(parse_redis_url("nope"));
  CHECK(parse_redis_url("redis://h"));
}

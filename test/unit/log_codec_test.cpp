#include "core/log_codec.hpp"

#include "core/sse.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace btcstream;

namespace {

using rv = redis_value;

rv str(std::string s) {
  return rv::of_string(std::move(s));
}

// One stream entry as Redis returns it: [id, [f1, v1, f2, v2, ...]].
rv entry(std::string id, std::vector<std::string> fields) {
  std::vector<rv> fs;
  for (auto& f : fields)
    fs.push_back(str(f));
  return rv::of_array({str(std::move(id)), rv::of_array(std::move(fs))});
}

// What the append script writes for id 1700000000002.
rv good() {
  return entry("1700000000002-0",
               {"ts", "1700000000001", "price", "43210.5", "prev",
                "1700000000000", "at", "1700000000003"});
}

bool malformed(const rv& v) {
  return !decode_entry(v).has_value();
}

} // namespace

TEST_CASE("an entry decodes into id, ts, price, prev and appended time") {
  auto e = decode_entry(good());
  REQUIRE(e);
  CHECK(e->u.id == 1700000000002u);
  CHECK(e->u.ts_ms == 1700000000001);
  CHECK(e->u.price == 43210.5);
  CHECK(e->prev == 1700000000000u);
  CHECK(e->appended_ms == 1700000000003);
}

TEST_CASE("fields in any order, unknown fields ignored, prev 0 allowed") {
  auto e = decode_entry(entry(
      "5-0", {"x", "y", "at", "9", "prev", "0", "price", "1", "ts", "-3"}));
  REQUIRE(e);
  CHECK(e->u.id == 5u);
  CHECK(e->u.ts_ms == -3);
  CHECK(e->u.price == 1.0);
  CHECK(e->prev == 0u);
  CHECK(e->appended_ms == 9);
}

TEST_CASE("ids that are not <decimal>-0 are malformed") {
  for (auto id : {"", "5", "5-1", "5-00", "-0", "0-0", "a-0", "+5-0", " 5-0",
                  "5-0 ", "0x5-0", "18446744073709551616-0", "5--0"}) {
    auto e = good();
    e.elements[0].str = id;
    CHECK_MESSAGE(malformed(e), id);
  }
  auto e = good();
  e.elements[0].str = "18446744073709551615-0";
  CHECK_FALSE(malformed(e));
}

TEST_CASE("missing, repeated or unparsable fields are malformed") {
  // Each field removed in turn.
  for (size_t i = 0; i < 8; i += 2) {
    auto e = good();
    auto& fs = e.elements[1].elements;
    fs.erase(fs.begin() + static_cast<long>(i),
             fs.begin() + static_cast<long>(i) + 2);
    CHECK(malformed(e));
  }
  auto dup = good();
  dup.elements[1].elements.push_back(str("ts"));
  dup.elements[1].elements.push_back(str("1"));
  CHECK(malformed(dup));
  auto odd = good();
  odd.elements[1].elements.push_back(str("x"));
  CHECK(malformed(odd));
  struct bad {
    size_t at;
    const char* text;
  };
  for (auto b :
       {bad{1, ""}, bad{1, "1.5"}, bad{1, "9223372036854775808"}, bad{1, "+1"},
        bad{1, "1 "}, bad{1, "-"}, bad{5, "-1"}, bad{5, "18446744073709551616"},
        bad{5, "x"}, bad{5, ""}, bad{7, "1e3"}, bad{7, ""}}) {
    auto e = good();
    e.elements[1].elements[b.at].str = b.text;
    CHECK_MESSAGE(malformed(e), b.text);
  }
}

TEST_CASE("prices that are not finite and > 0 are malformed") {
  for (auto p : {"nan", "NaN", "inf", "-inf", "infinity", "0", "-0", "0.0",
                 "-1", "1e400", "", "abc", "1.5x", " 1", "+1", "0x10", "1,5"}) {
    auto e = good();
    e.elements[1].elements[3].str = p;
    CHECK_MESSAGE(malformed(e), p);
  }
  auto e = good();
  e.elements[1].elements[3].str = "1e-300";
  REQUIRE_FALSE(malformed(e));
  CHECK(decode_entry(e)->u.price == 1e-300);
}

TEST_CASE("a prev that is not below the id is malformed") {
  auto e = good();
  e.elements[1].elements[5].str = "1700000000002";
  CHECK(malformed(e));
  e.elements[1].elements[5].str = "1700000000001";
  CHECK_FALSE(malformed(e));
}

TEST_CASE("entries of the wrong shape are malformed") {
  CHECK(malformed(rv::nil()));
  CHECK(malformed(str("5-0")));
  CHECK(malformed(rv::of_array({str("5-0")})));
  CHECK(malformed(rv::of_array({str("5-0"), rv::nil()})));
  CHECK(malformed(rv::of_array({rv::of_integer(5), good().elements[1]})));
  auto e = good();
  e.elements.push_back(str("extra"));
  CHECK(malformed(e));
  e = good();
  e.elements[1].elements[1] = rv::of_integer(1700000000001);
  CHECK(malformed(e));
  e = good();
  e.elements[1].elements[0] = rv::nil();
  CHECK(malformed(e));
}

TEST_CASE("format_price text reads back as the same double") {
  for (double p : {43210.5, 0.1, 1.0 / 3.0, 123456789.123456789, 1e-7, 5e-324,
                   1e20, 1e21, 1e300, std::numeric_limits<double>::max(),
                   std::nextafter(1.0, 2.0), 67891.23000000001}) {
    auto text = format_price(p);
    auto back = parse_price(text);
    REQUIRE_MESSAGE(back, text);
    CHECK_MESSAGE(*back == p, text);
  }
}

TEST_CASE("a range keeps good entries in order and counts the rest") {
  auto bad = good();
  bad.elements[0].str = "7-1";
  auto second = entry("1700000000003-0", {"ts", "1", "price", "2", "prev",
                                          "1700000000002", "at", "4"});
  auto r = decode_range(rv::of_array({good(), bad, second, str("junk")}));
  CHECK(r.failure == log_failure::none);
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[0].u.id == 1700000000002u);
  CHECK(r.entries[1].u.id == 1700000000003u);
  CHECK(r.entries[1].u.price == 2.0);
  CHECK(r.malformed == 2);
  auto empty = decode_range(rv::of_array({}));
  CHECK(empty.failure == log_failure::none);
  CHECK(empty.entries.empty());
  CHECK(empty.malformed == 0);
}

TEST_CASE("a range names its newest stream id, even of a malformed entry, "
          "so that the next read starts after it") {
  auto bad = entry("1700000000009-3", {"ts", "x"});
  auto r = decode_range(rv::of_array({good(), bad}));
  CHECK(r.entries.size() == 1);
  CHECK(r.malformed == 1);
  CHECK(r.last_id == 1700000000009u);
  CHECK(decode_range(rv::of_array({good()})).last_id == 1700000000002u);
  CHECK(decode_range(rv::of_array({})).last_id == 0u);
  CHECK(decode_range(rv::of_array({str("junk")})).last_id == 0u);
}

TEST_CASE("a range that is not an array fails") {
  CHECK(decode_range(rv::nil()).failure == log_failure::protocol);
  CHECK(decode_range(rv::of_integer(1)).failure == log_failure::protocol);
  auto err = decode_range(rv::of_error("WRONGTYPE Operation against a key"));
  CHECK(err.failure == log_failure::server);
  CHECK(err.error == "WRONGTYPE Operation against a key");
}

TEST_CASE("XREAD: nil is empty, one stream decodes, other shapes fail") {
  auto none = decode_xread(rv::nil());
  CHECK(none.failure == log_failure::none);
  CHECK(none.entries.empty());
  auto one = decode_xread(rv::of_array(
      {rv::of_array({str("btcstream:log"), rv::of_array({good()})})}));
  CHECK(one.failure == log_failure::none);
  REQUIRE(one.entries.size() == 1);
  CHECK(one.entries[0] == *decode_entry(good()));
  auto stream = rv::of_array({str("k"), rv::of_array({})});
  CHECK(decode_xread(rv::of_array({})).failure == log_failure::protocol);
  CHECK(decode_xread(rv::of_array({stream, stream})).failure
        == log_failure::protocol);
  CHECK(decode_xread(rv::of_array({str("k")})).failure
        == log_failure::protocol);
  CHECK(decode_xread(rv::of_array({rv::of_array({str("k")})})).failure
        == log_failure::protocol);
  CHECK(
      decode_xread(rv::of_array({rv::of_array({rv::nil(), rv::of_array({})})}))
          .failure
      == log_failure::protocol);
  CHECK(decode_xread(rv::of_array({rv::of_array({str("k"), str("x")})})).failure
        == log_failure::protocol);
  CHECK(decode_xread(str("OK")).failure == log_failure::protocol);
  CHECK(decode_xread(rv::of_error("ERR x")).failure == log_failure::server);
}

TEST_CASE("lease replies: [token, node], else protocol or server") {
  auto r = decode_lease(rv::of_array({rv::of_integer(7), str("node-a")}));
  CHECK(r.failure == log_failure::none);
  CHECK(r.token == 7u);
  CHECK(r.node == "node-a");
  CHECK(decode_lease(rv::of_array({rv::of_integer(0), str("")})).token == 0u);
  for (auto v :
       {rv::nil(), rv::of_integer(7), rv::of_array({rv::of_integer(7)}),
        rv::of_array({str("7"), str("n")}),
        rv::of_array({rv::of_integer(-1), str("n")}),
        rv::of_array({rv::of_integer(7), rv::of_integer(1)}),
        rv::of_array({rv::of_integer(7), str("n"), str("x")})})
    CHECK(decode_lease(v).failure == log_failure::protocol);
  auto err
      = decode_lease(rv::of_error("ERR the lease key holds a foreign value"));
  CHECK(err.failure == log_failure::server);
  CHECK(err.error == "ERR the lease key holds a foreign value");
}

TEST_CASE("append replies: an id, FENCED, else protocol or server") {
  auto r = decode_append(rv::of_integer(1700000000002));
  CHECK(r.failure == log_failure::none);
  CHECK_FALSE(r.fenced);
  CHECK(r.id == 1700000000002u);
  auto f = decode_append(str("FENCED"));
  CHECK(f.failure == log_failure::none);
  CHECK(f.fenced);
  CHECK(f.id == 0u);
  for (auto v : {rv::nil(), rv::of_integer(0), rv::of_integer(-5), str("5"),
                 str("fenced"), rv::of_array({rv::of_integer(5)})})
    CHECK(decode_append(v).failure == log_failure::protocol);
  auto err = decode_append(rv::of_error("OOM command not allowed"));
  CHECK(err.failure == log_failure::server);
  CHECK(err.error == "OOM command not allowed");
  CHECK_FALSE(decode_append(rv::of_error("FENCED")).fenced);
}

TEST_CASE("release replies: 1 or 0, else protocol or server") {
  CHECK(decode_release(rv::of_integer(1)).released);
  auto no = decode_release(rv::of_integer(0));
  CHECK(no.failure == log_failure::none);
  CHECK_FALSE(no.released);
  for (auto v : {rv::nil(), rv::of_integer(2), rv::of_integer(-1), str("1"),
                 rv::of_array({rv::of_integer(1)})}) {
    auto r = decode_release(v);
    CHECK(r.failure == log_failure::protocol);
    CHECK_FALSE(r.released);
  }
  CHECK(decode_release(rv::of_error("NOSCRIPT")).failure
        == log_failure::server);
}

TEST_CASE("number parsers take digits only, within range") {
  CHECK(parse_u64("0") == 0u);
  CHECK(parse_u64("18446744073709551615") == 18446744073709551615u);
  CHECK_FALSE(parse_u64("18446744073709551616"));
  CHECK_FALSE(parse_u64("-1"));
  CHECK_FALSE(parse_u64("+1"));
  CHECK_FALSE(parse_u64(""));
  CHECK_FALSE(parse_u64("1a"));
  CHECK(parse_i64("-9223372036854775808") == INT64_MIN);
  CHECK_FALSE(parse_i64("9223372036854775808"));
  CHECK_FALSE(parse_i64("-"));
  CHECK_FALSE(parse_i64("--1"));
}

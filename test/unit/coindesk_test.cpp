#include "core/coindesk.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>
#include <string_view>

using namespace btcstream;

namespace {

using strings = std::initializer_list<std::string_view>;

// The success example of DESIGN.md, "Upstream".
constexpr std::string_view ok_body
    = R"({"Data":{"BTC-USD":{"VALUE":97123.45,"VALUE_LAST_UPDATE_TS":1764182717,)"
      R"("TYPE":"964","MARKET":"ccix","INSTRUMENT":"BTC-USD"}},"Err":{}})";

coindesk_result parse(std::string_view body, int status = 200) {
  return parse_coindesk(status, body, "BTC-USD");
}

// A 200 answer whose instrument holds `value` (JSON text).
coindesk_result with_value(std::string_view value) {
  return parse(R"({"Data":{"BTC-USD":{"VALUE":)" + std::string{value}
               + R"(}},"Err":{}})");
}

} // namespace

TEST_CASE("error kinds have stable names for logs and metrics") {
  CHECK(std::string{to_string(coindesk_error::none)} == "none");
  CHECK(std::string{to_string(coindesk_error::http_status)} == "http_status");
  CHECK(std::string{to_string(coindesk_error::not_json)} == "not_json");
  CHECK(std::string{to_string(coindesk_error::bad_shape)} == "bad_shape");
  CHECK(std::string{to_string(coindesk_error::no_instrument)}
        == "no_instrument");
  CHECK(std::string{to_string(coindesk_error::bad_value)} == "bad_value");
}

TEST_CASE("a good answer yields the instrument's VALUE") {
  auto r = parse(ok_body);
  CHECK(r.error == coindesk_error::none);
  REQUIRE(r.price);
  CHECK(*r.price == 97123.45);
  CHECK(r.detail.empty());
}

TEST_CASE("the configured instrument is the one read") {
  auto body = R"({"Data":{"BTC-USD":{"VALUE":1},"ETH-USD":{"VALUE":2}}})";
  auto r = parse_coindesk(200, body, "ETH-USD");
  REQUIRE(r.price);
  CHECK(*r.price == 2);
  CHECK(parse_coindesk(200, body, "btc-usd").error
        == coindesk_error::no_instrument);
}

TEST_CASE("Err may be absent, null or an empty object") {
  CHECK(parse(R"({"Data":{"BTC-USD":{"VALUE":5}}})").price == 5.0);
  CHECK(parse(R"({"Data":{"BTC-USD":{"VALUE":5}},"Err":null})").price == 5.0);
  CHECK(parse(R"({"Data":{"BTC-USD":{"VALUE":5}},"Err":{}})").price == 5.0);
}

TEST_CASE("integer, tiny and huge finite values are accepted") {
  CHECK(with_value("97123").price == 97123.0);
  CHECK(with_value("5e-324").price == 5e-324);
  CHECK(with_value("1.7976931348623157e308").price == 1.7976931348623157e308);
  CHECK(with_value("123456789012345678901234567890").price
        == 1.2345678901234568e29);
  CHECK(with_value("18446744073709551615").price == 18446744073709551615.0);
}

TEST_CASE("a non-200 status is an http_status error with Err.message") {
  auto r = parse(
      R"({"Data":{},"Err":{"type":1,"message":"You are over your rate limit"}})",
      429);
  CHECK(r.error == coindesk_error::http_status);
  CHECK(!r.price);
  CHECK(r.detail == "You are over your rate limit");
}

TEST_CASE("a non-200 status wins even over a good body") {
  auto r = parse(ok_body, 500);
  CHECK(r.error == coindesk_error::http_status);
  CHECK(!r.price);
  CHECK(r.detail == "HTTP 500");
}

TEST_CASE("a non-200 status without a message says the status") {
  CHECK(parse("<html>Bad Gateway</html>", 502).detail == "HTTP 502");
  CHECK(parse("", 401).detail == "HTTP 401");
  CHECK(parse(R"({"Err":{"message":7}})", 403).detail == "HTTP 403");
  CHECK(parse(R"({"Err":{"message":""}})", 403).detail == "HTTP 403");
  CHECK(parse(R"({"Err":"message"})", 403).detail == "HTTP 403");
  CHECK(parse("[]", 404).detail == "HTTP 404");
  CHECK(parse(ok_body, 0).error == coindesk_error::http_status);
  CHECK(parse(ok_body, 201).error == coindesk_error::http_status);
}

TEST_CASE("a long upstream message is cut to 200 bytes") {
  auto r = parse(R"({"Err":{"message":")" + std::string(1000, 'x') + R"("}})",
                 503);
  CHECK(r.detail == std::string(200, 'x'));
}

TEST_CASE("a long message is not cut inside a UTF-8 sequence") {
  // 199 ASCII bytes, then a two-byte e-acute straddling byte 200.
  auto r = parse(R"({"Err":{"message":")" + std::string(199, 'x')
                     + "\xC3\xA9tail\"}}",
                 503);
  CHECK(r.detail == std::string(199, 'x'));
}

TEST_CASE("a body that is not JSON is not_json with its byte offset") {
  auto r = parse("<html>");
  CHECK(r.error == coindesk_error::not_json);
  CHECK(!r.price);
  CHECK(r.detail == "invalid JSON at byte 1");
  for (auto body : strings{"", " ", "{", R"({"Data":})", "{'Data':{}}",
                           R"({"Data":{"BTC-USD":{"VALUE":NaN}}})",
                           R"({"Data":{"BTC-USD":{"VALUE":Infinity}}})",
                           R"({"Data":{"BTC-USD":{"VALUE":-Infinity}}})",
                           R"({"Data":{"BTC-USD":{"VALUE":0x10}}})",
                           R"({"Data":{"BTC-USD":{"VALUE":01}}})",
                           R"({"Data":{"BTC-USD":{"VALUE":.5}}})",
                           R"({"Data":{}}} trailing)", "\xFF\xFE{}",
                           R"({"Data":{},})", "\"\xC3\""})
    CHECK_MESSAGE(parse(body).error == coindesk_error::not_json,
                  std::string{body});
}

TEST_CASE("a NUL byte inside the body is not JSON") {
  std::string body{ok_body};
  body.insert(10, 1, '\0');
  CHECK(parse(body).error == coindesk_error::not_json);
}

TEST_CASE("a document that is not an object is bad_shape") {
  for (auto body : strings{"[]", "null", "1", "\"Data\"", "true",
                           R"([{"Data":{"BTC-USD":{"VALUE":1}}}])"})
    CHECK_MESSAGE(parse(body).error == coindesk_error::bad_shape,
                  std::string{body});
}

TEST_CASE("a missing or non-object Data is bad_shape") {
  for (auto body :
       strings{"{}", R"({"Err":{}})", R"({"Data":null})", R"({"Data":[]})",
               R"({"Data":"BTC-USD"})", R"({"Data":1})",
               R"({"data":{"BTC-USD":{"VALUE":1}}})",
               R"({"Data":[{"BTC-USD":{"VALUE":1}}]})"})
    CHECK_MESSAGE(parse(body).error == coindesk_error::bad_shape,
                  std::string{body});
}

TEST_CASE("a non-empty Err is bad_shape even with a good Data") {
  auto r = parse(
      R"({"Data":{"BTC-USD":{"VALUE":1}},"Err":{"type":2,"message":"partial"}})");
  CHECK(r.error == coindesk_error::bad_shape);
  CHECK(!r.price);
  CHECK(r.detail == "partial");
  for (auto err : strings{R"({"type":2})", "[]", "\"\"", "0", "false",
                          "\"oops\"", "[1]"}) {
    auto body
        = R"({"Data":{"BTC-USD":{"VALUE":1}},"Err":)" + std::string{err} + "}";
    CHECK_MESSAGE(parse(body).error == coindesk_error::bad_shape, body);
  }
}

TEST_CASE("a missing instrument is no_instrument") {
  auto r = parse(R"({"Data":{},"Err":{}})");
  CHECK(r.error == coindesk_error::no_instrument);
  CHECK(r.detail == "no BTC-USD in Data");
  CHECK(parse(R"({"Data":{"ETH-USD":{"VALUE":1}}})").error
        == coindesk_error::no_instrument);
  CHECK(parse(R"({"Data":{"BTC-USD ":{"VALUE":1}}})").error
        == coindesk_error::no_instrument);
}

TEST_CASE("an instrument that is not an object is bad_value") {
  for (auto item : strings{"null", "1", "97123.45", "\"97123.45\"", "[]",
                           "[97123.45]", "true"}) {
    auto body = R"({"Data":{"BTC-USD":)" + std::string{item} + "}}";
    CHECK_MESSAGE(parse(body).error == coindesk_error::bad_value, body);
  }
}

TEST_CASE("a missing VALUE is bad_value") {
  CHECK(parse(R"({"Data":{"BTC-USD":{}}})").error == coindesk_error::bad_value);
  CHECK(parse(R"({"Data":{"BTC-USD":{"value":1}}})").error
        == coindesk_error::bad_value);
  CHECK(parse(R"({"Data":{"BTC-USD":{"PRICE":1}}})").detail == "no VALUE");
}

TEST_CASE("a VALUE that is not a number is bad_value") {
  for (auto v :
       strings{"\"97123.45\"", "\"1e3\"", "null", "true", "false", "[]", "[1]",
               "{}", R"({"VALUE":1})", "\"NaN\"", "\"Infinity\"", "\"\""}) {
    auto r = with_value(v);
    CHECK_MESSAGE(r.error == coindesk_error::bad_value, std::string{v});
    CHECK(!r.price);
  }
}

TEST_CASE("a VALUE that is zero or negative is bad_value") {
  for (auto v : strings{"0", "0.0", "-0", "-0.0", "-1", "-97123.45", "-5e-324",
                        "-18446744073709551615", "-1e308"}) {
    auto r = with_value(v);
    CHECK_MESSAGE(r.error == coindesk_error::bad_value, std::string{v});
    CHECK(!r.price);
  }
}

TEST_CASE("a VALUE beyond double range is bad_value, not a price of inf") {
  for (auto v : strings{"1e400", "-1e400", "1e999999999", "1.8e308"}) {
    auto r = with_value(v);
    CHECK_MESSAGE(r.error == coindesk_error::bad_value, std::string{v});
    CHECK(!r.price);
  }
  // 400 digits: an integer too large for uint64 and for double.
  CHECK(with_value(std::string(400, '9')).error == coindesk_error::bad_value);
  // An underflow reads as 0, which is not a price either.
  CHECK(with_value("1e-400").error == coindesk_error::bad_value);
}

TEST_CASE("an overflowing number elsewhere in the body is bad_value too") {
  // nlohmann 3.11 rejects the document; the count goes to one reason.
  auto r = parse(
      R"({"Data":{"BTC-USD":{"VALUE":1,"VALUE_LAST_UPDATE_TS":1e400}}})");
  CHECK(r.error == coindesk_error::bad_value);
  CHECK(r.detail == "number out of range");
}

TEST_CASE("a VALUE with three hundred digits is a finite price") {
  auto r = with_value(std::string(300, '9'));
  REQUIRE(r.price);
  CHECK(*r.price == doctest::Approx(1e300));
}

TEST_CASE("deeply nested input is handled without a crash") {
  std::string deep(100'000, '[');
  deep += std::string(100'000, ']');
  CHECK(parse(deep).error == coindesk_error::bad_shape);
  std::string unclosed(100'000, '{');
  CHECK(parse(unclosed).error == coindesk_error::not_json);
  auto nested_value = R"({"Data":{"BTC-USD":{"VALUE":)"
                      + std::string(50'000, '[') + std::string(50'000, ']')
                      + "}}}";
  CHECK(parse(nested_value).error == coindesk_error::bad_value);
}

TEST_CASE("a large body with many instruments is read") {
  std::string body = R"({"Data":{)";
  for (int i = 0; i < 10'000; ++i)
    body += "\"X" + std::to_string(i) + R"(":{"VALUE":1},)";
  body += R"("BTC-USD":{"VALUE":42}},"Err":{}})";
  CHECK(parse(body).price == 42.0);
}

TEST_CASE("a repeated key takes its last value") {
  // nlohmann's documented behaviour; pinned so a library change is noticed.
  CHECK(with_value("1,\"VALUE\":2").price == 2.0);
}

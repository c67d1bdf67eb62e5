#include "core/redis_value.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace btcstream;
using namespace std::string_literals;

TEST_CASE("a command encodes as a RESP array of bulk strings") {
  CHECK(encode_command({"GET", "k"}) == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  CHECK(encode_command({"PING"}) == "*1\r\n$4\r\nPING\r\n");
}

TEST_CASE("an empty argument and an empty command encode by length") {
  CHECK(encode_command({"SET", "k", ""})
        == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  CHECK(encode_command({}) == "*0\r\n");
}

TEST_CASE("binary arguments pass intact: CR, LF, NUL, '$' and '*'") {
  auto arg = "a\r\n$2\r\n*\0z"s;
  REQUIRE(arg.size() == 10);
  CHECK(encode_command({arg}) == "*1\r\n$10\r\n" + arg + "\r\n");
}

TEST_CASE("long arguments carry their full decimal length") {
  std::string big(100000, 'x');
  auto out = encode_command({"SET", "k", big});
  std::string head = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n";
  CHECK(out.substr(0, head.size()) == head);
  CHECK(out.size() == head.size() + 100000 + 2);
  CHECK(out.substr(out.size() - 2) == "\r\n");
}

TEST_CASE("values compare by kind and by the member their kind uses") {
  CHECK(redis_value::nil() == redis_value{});
  CHECK(redis_value::of_integer(5) == redis_value::of_integer(5));
  CHECK(redis_value::of_integer(5) != redis_value::of_integer(6));
  CHECK(redis_value::of_string("OK") != redis_value::of_error("OK"));
  CHECK(redis_value::of_string("") != redis_value::nil());
  CHECK(redis_value::of_integer(0) != redis_value::nil());
  auto a = redis_value::of_array(
      {redis_value::of_string("x"), redis_value::of_integer(1)});
  auto b = a;
  CHECK(a == b);
  b.elements[1].integer = 2;
  CHECK(a != b);
  CHECK(redis_value::of_array({}) != redis_value::nil());
}

TEST_CASE("is_string matches only strings with exactly those bytes") {
  CHECK(redis_value::of_string("FENCED").is_string("FENCED"));
  CHECK_FALSE(redis_value::of_error("FENCED").is_string("FENCED"));
  CHECK_FALSE(redis_value::of_string("FENCED ").is_string("FENCED"));
  CHECK_FALSE(redis_value::nil().is_string(""));
}

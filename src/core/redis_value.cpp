#include "core/redis_value.hpp"

namespace btcstream {

redis_value redis_value::nil() {
  return {};
}

redis_value redis_value::of_integer(int64_t i) {
  redis_value v;
  v.kind = type::integer;
  v.integer = i;
  return v;
}

redis_value redis_value::of_string(std::string s) {
  redis_value v;
  v.kind = type::string;
  v.str = std::move(s);
  return v;
}

redis_value redis_value::of_error(std::string text) {
  redis_value v;
  v.kind = type::error;
  v.str = std::move(text);
  return v;
}

redis_value redis_value::of_array(std::vector<redis_value> elements) {
  redis_value v;
  v.kind = type::array;
  v.elements = std::move(elements);
  return v;
}

bool redis_value::is_string(const std::string& s) const {
  return kind == type::string && str == s;
}

bool operator==(const redis_value& a, const redis_value& b) {
  if (a.kind != b.kind)
    return false;
  switch (a.kind) {
  case redis_value::type::nil:
    return true;
  case redis_value::type::integer:
    return a.integer == b.integer;
  case redis_value::type::string:
  case redis_value::type::error:
    return a.str == b.str;
  case redis_value::type::array:
    return a.elements == b.elements;
  }
  return false;
}

std::string encode_command(const std::vector<std::string>& args) {
  // Bulk strings carry their length, so any bytes (CR, LF, NUL) pass intact.
  size_t size = 16;
  for (const auto& a : args)
    size += a.size() + 16;
  std::string out;
  out.reserve(size);
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const auto& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

} // namespace btcstream

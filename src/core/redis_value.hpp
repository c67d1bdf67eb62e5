#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace btcstream {

/// One RESP2 reply, owned by us: hiredis's reply objects are converted into
/// this at once and freed, so none outlives the parse.
struct redis_value {
  /// The RESP2 reply kinds; a status (`+OK`) and a bulk string are both
  /// `string`, a nil bulk string and a nil array are both `nil`.
  enum class type { nil, integer, string, error, array };

  /// Which of the members below holds the value.
  type kind = type::nil;
  /// The value of an `integer`.
  int64_t integer = 0;
  /// The bytes of a `string`, or the text of an `error`.
  std::string str;
  /// The elements of an `array`.
  std::vector<redis_value> elements;

  /// A nil reply.
  static redis_value nil();
  /// An integer reply.
  static redis_value of_integer(int64_t i);
  /// A bulk or status string.
  static redis_value of_string(std::string s);
  /// An error reply (`-ERR ...`), without the leading '-'.
  static redis_value of_error(std::string text);
  /// An array of replies.
  static redis_value of_array(std::vector<redis_value> elements);

  /// Whether this is a `string` equal to `s`.
  bool is_string(const std::string& s) const;
};

/// Structural equality (kind and the member that kind uses).
bool operator==(const redis_value& a, const redis_value& b);
/// Structural inequality.
inline bool operator!=(const redis_value& a, const redis_value& b) {
  return !(a == b);
}

/// Encodes a command as RESP: an array of bulk strings
/// (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`). Binary-safe; `args` must not be
/// empty (an empty vector encodes `*0\r\n`, which Redis ignores).
std::string encode_command(const std::vector<std::string>& args);

} // namespace btcstream

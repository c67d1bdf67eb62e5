#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace btcstream {

/// A request target split into its decoded path and query parameters.
struct target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> params;

  /// The value of the first parameter named `key`, if any.
  std::optional<std::string_view> param(std::string_view key) const;
  /// The first of `keys` given more than once, if any: such a request is
  /// refused rather than answered for one of the values.
  std::optional<std::string_view>
  repeated(std::initializer_list<std::string_view> keys) const;
};

/// Splits and percent-decodes an origin-form request target (`/a/b?x=1&y`).
/// Returns nothing for a target that does not start with `/`, a bad `%`
/// escape, or a decoded NUL byte. `+` in the query decodes to a space.
std::optional<target> parse_target(std::string_view raw);

/// A request line's target: the origin form as `parse_target`, or the
/// absolute form (`http://host/a?x=1`, what proxies are sent), which a server
/// must accept (RFC 9112 3.2.2): its scheme and authority are dropped.
std::optional<target> parse_request_target(std::string_view raw);

/// The value of a hexadecimal digit, or -1.
int hex_value(char c);

/// Decodes `%XX` escapes (and `+` as a space when `plus_is_space`). Returns
/// nothing for a bad escape or a decoded NUL byte.
std::optional<std::string> percent_decode(std::string_view in,
                                          bool plus_is_space);

/// Parses an event id: 1 to 20 decimal digits that fit in uint64_t.
std::optional<uint64_t> parse_event_id(std::string_view s);

/// Parses `since` (unix seconds as decimal digits with an optional fraction)
/// into the smallest whole millisecond that is >= the value, so that
/// `ts_ms >= result` exactly when `ts_ms / 1000.0 >= since`.
std::optional<int64_t> parse_since_ms(std::string_view s);

/// Where a client wants its stream to start.
struct resume_point {
  enum class kind {
    latest,   ///< no resume point: the latest update, then live
    after_id, ///< every update with id > `id`
    since,    ///< every update with ts_ms >= `since_ms`
    live,     ///< a `since` in the future (within a day): live only, no gap
  };
  kind what = kind::latest;
  uint64_t id = 0;
  int64_t since_ms = 0;
  /// The resume point as the client gave it (for the gap event).
  std::string given;
};

/// Picks the resume point of a `/stream` request, in precedence order:
/// `Last-Event-ID` header, `lastEventId` parameter, `since` parameter.
/// Returns the point, or an error message for a 400 answer.
struct resume_choice {
  std::optional<resume_point> point;
  std::string error;
};
resume_choice choose_resume_point(std::optional<std::string_view> header,
                                  const target& t, int64_t now_ms);

} // namespace btcstream

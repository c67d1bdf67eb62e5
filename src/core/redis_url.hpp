#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// Where and how to reach Redis: `redis://[[user]:password@]host[:port][/db]`.
struct redis_endpoint {
  /// Host name or address; IPv6 literals without brackets.
  std::string host;
  /// TCP port, 6379 by default.
  uint16_t port = 6379;
  /// ACL user name (percent-decoded); empty: the default user.
  std::string user;
  /// Password (percent-decoded); empty: no AUTH. Never log it.
  std::string password;
  /// Logical database, 0..15.
  int db = 0;

  /// The URL with the password replaced by `***`, for logs.
  std::string describe() const;
};

/// Parses a `redis://` URL. On failure returns nullopt and, if `error` is
/// given, stores a reason there that never quotes the user info (which
/// holds the password).
std::optional<redis_endpoint> parse_redis_url(std::string_view s,
                                              std::string* error = nullptr);

} // namespace btcstream

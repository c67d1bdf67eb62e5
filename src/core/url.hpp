#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// An absolute `http` or `https` URL split for a client.
struct url {
  std::string scheme; ///< "http" or "https"
  std::string host;   ///< without brackets for IPv6 literals
  std::string port;   ///< explicit, or the scheme's default
  std::string target; ///< path and query, at least "/"

  /// The `instruments` query parameter (first one), or "BTC-USD".
  std::string instrument() const;
};

/// Parses `scheme://host[:port][/path][?query]`; no user info, no fragment.
std::optional<url> parse_url(std::string_view s);

/// `s` with the value of every `api_key` query parameter (CoinDesk's name
/// for the key, in any case) shown as `<redacted>`: for logs and errors.
std::string redact_url(std::string_view s);

} // namespace btcstream

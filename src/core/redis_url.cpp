#include "core/redis_url.hpp"

#include "core/query.hpp"

namespace btcstream {

namespace {

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
         || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

bool all_digits(std::string_view s) {
  for (auto c : s)
    if (c < '0' || c > '9')
      return false;
  return !s.empty();
}

std::optional<redis_endpoint> fail(std::string* error, const char* why) {
  if (error)
    *error = why;
  return std::nullopt;
}

} // namespace

std::string redis_endpoint::describe() const {
  std::string out = "redis://";
  if (!user.empty() || !password.empty()) {
    // The user name is no secret; the password is never shown.
    out += user;
    if (!password.empty())
      out += ":***";
    out += '@';
  }
  if (host.find(':') != std::string::npos)
    out += '[' + host + ']';
  else
    out += host;
  out += ':' + std::to_string(port) + '/' + std::to_string(db);
  return out;
}

std::optional<redis_endpoint> parse_redis_url(std::string_view s,
                                              std::string* error) {
  constexpr std::string_view scheme = "redis://";
  if (s.substr(0, scheme.size()) != scheme)
    return fail(error, "a Redis URL starts with redis://");
  s.remove_prefix(scheme.size());
  redis_endpoint ep;
  // The last '@' ends the user info: host, port and db never hold one, and
  // a password with a raw '@', ':' or '/' is still taken whole.
  if (auto at = s.rfind('@'); at != std::string_view::npos) {
    auto info = s.substr(0, at);
    s.remove_prefix(at + 1);
    auto colon = info.find(':');
    if (colon == std::string_view::npos)
      return fail(error, "the user info needs ':' before the password");
    auto user = percent_decode(info.substr(0, colon), false);
    auto password = percent_decode(info.substr(colon + 1), false);
    if (!user || !password)
      return fail(error, "bad percent escape in the user info");
    if (password->empty())
      return fail(error, "empty password");
    ep.user = std::move(*user);
    ep.password = std::move(*password);
  }
  auto slash = s.find('/');
  auto authority = s.substr(0, slash);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos || close < 3)
      return fail(error, "bad IPv6 host");
    for (auto c : authority.substr(1, close - 1))
      if (hex_value(c) < 0 && c != ':' && c != '.')
        return fail(error, "bad IPv6 host");
    ep.host = std::string{authority.substr(1, close - 1)};
    auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return fail(error, "junk after the IPv6 host");
      port = rest.substr(1);
      if (port.empty())
        return fail(error, "empty port");
    }
  } else {
    auto colon = authority.find(':');
    ep.host = std::string{authority.substr(0, colon)};
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty())
        return fail(error, "empty port");
    }
    if (ep.host.empty())
      return fail(error, "empty host");
    for (auto c : ep.host)
      if (!host_char(c))
        return fail(error, "bad character in the host");
  }
  if (!port.empty()) {
    if (!all_digits(port) || port.size() > 5)
      return fail(error, "the port is not a number in 1..65535");
    auto n = std::stoul(std::string{port});
    if (n < 1 || n > 65535)
      return fail(error, "the port is not a number in 1..65535");
    ep.port = static_cast<uint16_t>(n);
  }
  if (slash != std::string_view::npos) {
    auto db = s.substr(slash + 1);
    if (!db.empty()) {
      if (!all_digits(db) || db.size() > 2 || std::stoi(std::string{db}) > 15)
        return fail(error, "the db is not a number in 0..15");
      ep.db = std::stoi(std::string{db});
    }
  }
  return ep;
}

} // namespace btcstream

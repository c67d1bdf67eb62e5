#include "core/url.hpp"

#include "core/query.hpp"

#include <cctype>

namespace btcstream {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i]))
        != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// Digits only, 1..65535, returned without leading zeros.
std::optional<std::string> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5)
    return std::nullopt;
  unsigned n = 0;
  for (auto c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n == 0 || n > 65535)
    return std::nullopt;
  return std::to_string(n);
}

bool is_ipv6_char(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':'
         || c == '.';
}

} // namespace

std::string url::instrument() const {
  if (auto t = parse_target(target))
    if (auto v = t->param("instruments")) {
      auto first = v->substr(0, v->find(','));
      if (!first.empty())
        return std::string{first};
    }
  return "BTC-USD";
}

std::optional<url> parse_url(std::string_view s) {
  for (auto c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#')
      return std::nullopt;
  auto sep = s.find("://");
  if (sep == std::string_view::npos)
    return std::nullopt;
  url result;
  auto scheme = s.substr(0, sep);
  std::string default_port;
  if (iequals(scheme, "http")) {
    result.scheme = "http";
    default_port = "80";
  } else if (iequals(scheme, "https")) {
    result.scheme = "https";
    default_port = "443";
  } else {
    return std::nullopt;
  }
  auto rest = s.substr(sep + 3);
  auto end = rest.find_first_of("/?");
  auto authority = rest.substr(0, end);
  auto tail
      = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.find('@') != std::string_view::npos)
    return std::nullopt;
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    host = authority.substr(1, close - 1);
    for (auto c : host)
      if (!is_ipv6_char(c))
        return std::nullopt;
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return std::nullopt;
      has_port = true;
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
    }
    if (host.find_first_of("[]") != std::string_view::npos)
      return std::nullopt;
  }
  if (host.empty())
    return std::nullopt;
  result.host = std::string{host};
  if (has_port) {
    auto p = parse_port(port);
    if (!p)
      return std::nullopt;
    result.port = std::move(*p);
  } else {
    result.port = std::move(default_port);
  }
  if (tail.empty())
    result.target = "/";
  else if (tail.front() == '?')
    result.target = "/" + std::string{tail};
  else
    result.target = std::string{tail};
  // Catches bad `%` escapes now, as a configuration error, rather than at
  // the first request.
  if (!parse_target(result.target))
    return std::nullopt;
  return result;
}

std::string redact_url(std::string_view s) {
  auto q = s.find('?');
  if (q == std::string_view::npos)
    return std::string{s};
  std::string out{s.substr(0, q + 1)};
  auto rest = s.substr(q + 1);
  for (;;) {
    auto amp = rest.find('&');
    auto part = rest.substr(0, amp);
    auto eq = part.find('=');
    auto name = part.substr(0, eq);
    bool secret = eq != std::string_view::npos && name.size() == 7;
    for (size_t i = 0; secret && i < name.size(); ++i)
      secret
          = std::tolower(static_cast<unsigned char>(name[i])) == "api_key"[i];
    out += secret ? std::string{name} + "=<redacted>" : std::string{part};
    if (amp == std::string_view::npos)
      return out;
    out += '&';
    rest = rest.substr(amp + 1);
  }
}

} // namespace btcstream

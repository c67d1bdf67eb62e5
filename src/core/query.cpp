#include "core/query.hpp"

#include <cctype>
#include <limits>

namespace btcstream {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// acc = acc * 10 + d, unless that exceeds `limit`.
bool push_digit(uint64_t& acc, char d, uint64_t limit) {
  auto v = static_cast<uint64_t>(d - '0');
  if (acc > (limit - v) / 10)
    return false;
  acc = acc * 10 + v;
  return true;
}

constexpr int64_t one_day_ms = 24 * 60 * 60 * 1000;

} // namespace

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view in,
                                          bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    auto c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size())
        return std::nullopt;
      auto hi = hex_value(in[i + 1]);
      auto lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    // A NUL would truncate the value in any C API it reaches later.
    if (c == '\0')
      return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::optional<std::string_view> target::param(std::string_view key) const {
  for (auto& [k, v] : params)
    if (k == key)
      return std::string_view{v};
  return std::nullopt;
}

std::optional<std::string_view>
target::repeated(std::initializer_list<std::string_view> keys) const {
  for (auto key : keys) {
    size_t n = 0;
    for (auto& kv : params)
      n += kv.first == key ? 1 : 0;
    if (n > 1)
      return key;
  }
  return std::nullopt;
}

std::optional<target> parse_target(std::string_view raw) {
  if (raw.empty() || raw.front() != '/')
    return std::nullopt;
  auto q = raw.find('?');
  auto path = percent_decode(raw.substr(0, q), false);
  if (!path)
    return std::nullopt;
  target t;
  t.path = std::move(*path);
  if (q == std::string_view::npos)
    return t;
  auto query = raw.substr(q + 1);
  for (;;) {
    auto amp = query.find('&');
    auto piece = query.substr(0, amp);
    // Empty pieces (`a&&b`, a trailing `&`) carry nothing; skip them.
    if (!piece.empty()) {
      auto eq = piece.find('=');
      auto key = percent_decode(piece.substr(0, eq), true);
      auto value
          = percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                        : piece.substr(eq + 1),
                           true);
      if (!key || !value)
        return std::nullopt;
      t.params.emplace_back(std::move(*key), std::move(*value));
    }
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return t;
}

std::optional<target> parse_request_target(std::string_view raw) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (raw.size() < scheme.size())
      continue;
    bool same = true;
    for (size_t i = 0; i < scheme.size(); ++i)
      same = same
             && std::tolower(static_cast<unsigned char>(raw[i])) == scheme[i];
    if (!same)
      continue;
    auto rest = raw.substr(scheme.size());
    auto end = rest.find_first_of("/?");
    if (end == std::string_view::npos)
      return parse_target("/");
    // An empty path is "/" (RFC 9110 4.2.3).
    if (rest[end] == '?')
      return parse_target("/" + std::string{rest.substr(end)});
    return parse_target(rest.substr(end));
  }
  return parse_target(raw);
}

std::optional<uint64_t> parse_event_id(std::string_view s) {
  if (s.empty() || s.size() > 20)
    return std::nullopt;
  uint64_t id = 0;
  for (auto c : s)
    if (!is_digit(c)
        || !push_digit(id, c, std::numeric_limits<uint64_t>::max()))
      return std::nullopt;
  return id;
}

std::optional<int64_t> parse_since_ms(std::string_view s) {
  auto dot = s.find('.');
  auto secs = s.substr(0, dot);
  auto frac
      = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  if (secs.empty() || (dot != std::string_view::npos && frac.empty()))
    return std::nullopt;
  for (auto c : secs)
    if (!is_digit(c))
      return std::nullopt;
  for (auto c : frac)
    if (!is_digit(c))
      return std::nullopt;
  constexpr auto limit
      = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t ms = 0;
  for (auto c : secs)
    if (!push_digit(ms, c, limit))
      return std::nullopt;
  for (size_t i = 0; i < 3; ++i)
    if (!push_digit(ms, i < frac.size() ? frac[i] : '0', limit))
      return std::nullopt;
  // Round up: `ts_ms >= result` must hold exactly when ts >= since.
  bool remainder = false;
  for (size_t i = 3; i < frac.size(); ++i)
    remainder = remainder || frac[i] != '0';
  if (remainder) {
    if (ms == limit)
      return std::nullopt;
    ++ms;
  }
  return static_cast<int64_t>(ms);
}

resume_choice choose_resume_point(std::optional<std::string_view> header,
                                  const target& t, int64_t now_ms) {
  resume_choice result;
  auto by_id = [&](std::string_view given, const char* error) {
    if (auto id = parse_event_id(given)) {
      resume_point p;
      p.what = resume_point::kind::after_id;
      p.id = *id;
      p.given = std::string{given};
      result.point = std::move(p);
    } else {
      result.error = error;
    }
    return result;
  };
  if (auto key = t.repeated({"lastEventId", "since"})) {
    result.error = std::string{*key} + " given more than once";
    return result;
  }
  if (header)
    return by_id(*header, "invalid Last-Event-ID");
  if (auto id = t.param("lastEventId"))
    return by_id(*id, "invalid lastEventId");
  auto since = t.param("since");
  if (!since) {
    result.point = resume_point{};
    return result;
  }
  auto since_ms = parse_since_ms(*since);
  if (!since_ms) {
    result.error = "invalid since";
    return result;
  }
  auto horizon = now_ms > std::numeric_limits<int64_t>::max() - one_day_ms
                     ? std::numeric_limits<int64_t>::max()
                     : now_ms + one_day_ms;
  if (*since_ms > horizon) {
    result.error = "since is more than a day in the future";
    return result;
  }
  resume_point p;
  p.what = *since_ms > now_ms ? resume_point::kind::live
                              : resume_point::kind::since;
  p.since_ms = *since_ms;
  p.given = std::string{*since};
  result.point = std::move(p);
  return result;
}

} // namespace btcstream

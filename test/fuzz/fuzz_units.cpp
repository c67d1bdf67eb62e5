// (d) The small parsers of configuration and upstream headers, on the same
// bytes: parse_duration, parse_size, parse_url, parse_retry_after and
// parse_redis_url. No crash, and the properties each has:
// - a duration reads back from its millisecond count, and is the input
//   value rounded up to a whole millisecond;
// - a size reads back from its byte count and is a multiple of its unit;
// - a URL's parts hold no control character, space or '#' (and its host
//   no '@'); it reads
//   back the same from its parts;
// - Retry-After: delay-seconds are exact, a date counts down with `now`;
// - redact_url hides every api_key value and nothing else;
// - a Redis URL reads back from describe() (which never shows the
//   password), and an error text never quotes the password.

#include "fuzz_common.hpp"

#include "core/redis_url.hpp"
#include "core/retry_after.hpp"
#include "core/units.hpp"
#include "core/url.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>

namespace {

using namespace btcstream;

bool digits_only(std::string_view s) {
  for (auto c : s)
    if (c < '0' || c > '9')
      return false;
  return !s.empty();
}

void check_duration(const std::string& s) {
  auto d = parse_duration(s);
  if (!d)
    return;
  auto ms = d->count();
  FUZZ_CHECK(ms >= 0);
  FUZZ_CHECK(parse_duration(std::to_string(ms) + "ms") == d);
  // Against long double arithmetic: the value times the unit, rounded up.
  auto unit_at = s.find_first_not_of("0123456789.");
  FUZZ_CHECK(unit_at != std::string::npos);
  auto unit = s.substr(unit_at);
  long double mult = unit == "ms"                   ? 1
                     : unit == "s"                  ? 1000
                     : unit == "min" || unit == "m" ? 60000
                                                    : 3600000;
  FUZZ_CHECK(unit == "ms" || unit == "s" || unit == "min" || unit == "m"
             || unit == "h");
  auto exact = std::strtold(s.substr(0, unit_at).c_str(), nullptr) * mult;
  auto got = static_cast<long double>(ms);
  auto slack = 2 + got * 1e-17L;
  FUZZ_CHECK(got + slack >= exact && got < exact + 1 + slack);
}

void check_size(const std::string& s) {
  auto n = parse_size(s);
  if (!n)
    return;
  FUZZ_CHECK(parse_size(std::to_string(*n)) == n);
  auto at = s.find_first_not_of("0123456789");
  auto unit = at == std::string::npos ? std::string{} : s.substr(at);
  if (unit == "KiB")
    FUZZ_CHECK(*n % 1024 == 0);
  else if (unit == "MiB")
    FUZZ_CHECK(*n % (1024 * 1024) == 0);
  else if (unit == "GiB")
    FUZZ_CHECK(*n % (1024 * 1024 * 1024) == 0);
}

// No control character, space or '#' anywhere; no '@' (user info) in the
// host or port ('@' is a valid path character).
bool clean_part(std::string_view s, bool at_ok = false) {
  for (auto c : s)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#'
        || (c == '@' && !at_ok))
      return false;
  return true;
}

void check_url(const std::string& s) {
  auto u = parse_url(s);
  if (!u)
    return;
  FUZZ_CHECK(u->scheme == "http" || u->scheme == "https");
  FUZZ_CHECK(!u->host.empty() && clean_part(u->host));
  FUZZ_CHECK(clean_part(u->port) && digits_only(u->port)
             && u->port.front() != '0' && std::stoul(u->port) <= 65535);
  FUZZ_CHECK(!u->target.empty() && u->target.front() == '/');
  FUZZ_CHECK(clean_part(u->target, true));
  auto instrument = u->instrument();
  FUZZ_CHECK(!instrument.empty());
  FUZZ_CHECK(instrument.find('\0') == std::string::npos);
  // From its parts, the same URL.
  auto host
      = u->host.find(':') != std::string::npos ? "[" + u->host + "]" : u->host;
  auto again = parse_url(u->scheme + "://" + host + ":" + u->port + u->target);
  FUZZ_CHECK(again && again->scheme == u->scheme && again->host == u->host
             && again->port == u->port && again->target == u->target);
}

void check_retry_after(const std::string& s) {
  constexpr int64_t now = 1'764'182'717'000;
  auto a = parse_retry_after(s, now);
  if (!a)
    return;
  FUZZ_CHECK(*a >= 0);
  auto b = parse_retry_after(s, now + 5000);
  FUZZ_CHECK(b);
  auto trimmed = s;
  while (!trimmed.empty()
         && (trimmed.front() == ' ' || trimmed.front() == '\t'))
    trimmed.erase(0, 1);
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t'))
    trimmed.pop_back();
  if (digits_only(trimmed)) {
    FUZZ_CHECK(*a == std::stoll(trimmed) * 1000 && *b == *a);
  } else {
    // A date: the wait shrinks as now grows, down to 0.
    FUZZ_CHECK(*b == (*a > 5000 ? *a - 5000 : 0));
  }
}

void check_redis_url(const std::string& s) {
  std::string error;
  auto ep = parse_redis_url(s, &error);
  // Where the raw password is, if the text has user info.
  size_t pw_at = 0, pw_len = 0;
  if (s.rfind("redis://", 0) == 0) {
    auto at = s.rfind('@');
    auto colon = s.find(':', 8);
    if (at != std::string::npos && at >= 8 && colon < at) {
      pw_at = colon + 1;
      pw_len = at - pw_at;
    }
  }
  // The same URL with every letter g-z of the password changed (letters
  // that are neither hex digits nor syntax: the parse takes the same path).
  auto other_text = s;
  for (size_t i = pw_at; i < pw_at + pw_len; ++i) {
    auto c = other_text[i] | 0x20;
    if (c >= 'g' && c <= 'z')
      other_text[i] = c == 'q' ? 'r' : 'q';
  }
  std::string other_error;
  auto other_ep = parse_redis_url(other_text, &other_error);
  FUZZ_CHECK(ep.has_value() == other_ep.has_value());
  if (!ep) {
    FUZZ_CHECK(!error.empty());
    // The reason does not depend on the password: it never quotes it.
    FUZZ_CHECK(error == other_error);
    return;
  }
  FUZZ_CHECK(other_error.empty() && error.empty());
  FUZZ_CHECK(!ep->host.empty() && ep->port >= 1);
  FUZZ_CHECK(ep->db >= 0 && ep->db <= 15);
  FUZZ_CHECK(ep->password.empty() == (pw_len == 0));
  auto described = ep->describe();
  // describe() does not depend on the password, only on whether there is
  // one.
  auto other = *ep;
  if (!other.password.empty())
    other.password = "x";
  FUZZ_CHECK(other.describe() == described);
  if (!ep->password.empty())
    FUZZ_CHECK(fuzz::contains(described, ":***@"));
  // It reads back (the user name is written unescaped, so only without
  // the characters that would need escaping).
  if (ep->user.find_first_of(":@/%") == std::string::npos) {
    auto back = parse_redis_url(described);
    if (ep->password.empty() && ep->user.empty()) {
      FUZZ_CHECK(back);
    }
    if (back) {
      FUZZ_CHECK(back->host == ep->host && back->port == ep->port
                 && back->db == ep->db && back->user == ep->user);
    }
  }
}

} // namespace

// redact_url: the same text but the api_key values; every api_key=
// parameter (in any case) shows `<redacted>`; redacting again changes
// nothing.
void check_redact_url(const std::string& s) {
  auto r = redact_url(s);
  FUZZ_CHECK(redact_url(r) == r);
  auto q = s.find('?');
  FUZZ_CHECK(r.substr(0, q) == s.substr(0, q));
  if (q == std::string::npos)
    return;
  auto count = [](const std::string& t, char c) {
    return std::count(t.begin(), t.end(), c);
  };
  FUZZ_CHECK(count(r, '&') == count(s, '&'));
  size_t at = q + 1;
  for (;;) {
    auto amp = r.find('&', at);
    auto part = r.substr(at, amp == std::string::npos ? amp : amp - at);
    std::string name = part.substr(0, part.find('='));
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (name == "api_key" && part.size() > name.size())
      FUZZ_CHECK(part.substr(name.size()) == "=<redacted>");
    if (amp == std::string::npos)
      break;
    at = amp + 1;
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string s(reinterpret_cast<const char*>(data), size);
  check_duration(s);
  check_size(s);
  check_url(s);
  check_redact_url(s);
  check_retry_after(s);
  check_redis_url(s);
  return 0;
}

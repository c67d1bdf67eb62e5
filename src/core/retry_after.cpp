#include "core/retry_after.hpp"

#include <array>
#include <cctype>

namespace btcstream {

namespace {

bool digits(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 10)
    return false;
  out = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)))
      return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  auto era = (y >= 0 ? y : y - 399) / 400;
  auto yoe = static_cast<unsigned>(y - era * 400);
  auto doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  auto doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (exactly 29 characters).
std::optional<int64_t> parse_imf_fixdate(std::string_view s) {
  static constexpr std::array<std::string_view, 7> days
      = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> months
      = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' '
      || s[16] != ' ' || s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT")
    return std::nullopt;
  bool day_ok = false;
  for (auto d : days)
    day_ok = day_ok || s.substr(0, 3) == d;
  unsigned month = 0;
  for (unsigned i = 0; i < months.size(); ++i)
    if (s.substr(8, 3) == months[i])
      month = i + 1;
  int64_t day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (!day_ok || month == 0 || !digits(s.substr(5, 2), day)
      || !digits(s.substr(12, 4), year) || !digits(s.substr(17, 2), hh)
      || !digits(s.substr(20, 2), mm) || !digits(s.substr(23, 2), ss))
    return std::nullopt;
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
    return std::nullopt;
  auto days_since_epoch
      = days_from_civil(year, month, static_cast<unsigned>(day));
  return ((days_since_epoch * 24 + hh) * 60 + mm) * 60 * 1000 + ss * 1000;
}

} // namespace

std::optional<int64_t> parse_retry_after(std::string_view value,
                                         int64_t now_ms) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
    value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
    value.remove_suffix(1);
  int64_t seconds = 0;
  if (digits(value, seconds))
    return seconds * 1000;
  if (auto at = parse_imf_fixdate(value))
    return *at > now_ms ? *at - now_ms : 0;
  return std::nullopt;
}

} // namespace btcstream

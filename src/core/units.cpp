#include "core/units.hpp"

#include <cstddef>
#include <limits>

namespace btcstream {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

size_t count_digits(std::string_view s, size_t from) {
  auto i = from;
  while (i < s.size() && is_digit(s[i]))
    ++i;
  return i - from;
}

// acc = acc * mul + add, unless that exceeds `limit`.
bool mul_add(uint64_t& acc, uint64_t mul, uint64_t add, uint64_t limit) {
  if (add > limit || acc > (limit - add) / mul)
    return false;
  acc = acc * mul + add;
  return true;
}

// A unit's length in ms as mult * 10^shift: the shift moves the decimal
// point, so only the small `mult` needs real multiplication and the fraction
// stays exact.
struct duration_unit {
  std::string_view name;
  uint64_t mult;
  size_t shift;
};

constexpr duration_unit duration_units[] = {
    {"ms", 1, 0}, {"s", 1, 3}, {"min", 6, 4}, {"m", 6, 4}, {"h", 36, 5},
};

} // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  auto int_len = count_digits(s, 0);
  if (int_len == 0)
    return std::nullopt;
  auto int_part = s.substr(0, int_len);
  std::string_view frac_part;
  auto pos = int_len;
  if (pos < s.size() && s[pos] == '.') {
    auto frac_len = count_digits(s, pos + 1);
    if (frac_len == 0)
      return std::nullopt;
    frac_part = s.substr(pos + 1, frac_len);
    pos += 1 + frac_len;
  }
  auto name = s.substr(pos);
  const duration_unit* unit = nullptr;
  for (auto& u : duration_units)
    if (u.name == name)
      unit = &u;
  if (unit == nullptr)
    return std::nullopt;
  constexpr auto limit
      = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  // Whole part after shifting the decimal point by `unit->shift` digits.
  uint64_t whole = 0;
  for (auto c : int_part)
    if (!mul_add(whole, 10, static_cast<uint64_t>(c - '0'), limit))
      return std::nullopt;
  for (size_t i = 0; i < unit->shift; ++i) {
    auto d = i < frac_part.size() ? frac_part[i] - '0' : 0;
    if (!mul_add(whole, 10, static_cast<uint64_t>(d), limit))
      return std::nullopt;
  }
  if (!mul_add(whole, unit->mult, 0, limit))
    return std::nullopt;
  // The remaining fraction times `mult`: its carry is whole milliseconds, any
  // nonzero digit left over rounds up.
  auto rest = frac_part.size() > unit->shift ? frac_part.substr(unit->shift)
                                             : std::string_view{};
  uint64_t carry = 0;
  bool remainder = false;
  for (auto i = rest.size(); i-- > 0;) {
    auto v = static_cast<uint64_t>(rest[i] - '0') * unit->mult + carry;
    remainder = remainder || v % 10 != 0;
    carry = v / 10;
  }
  if (!mul_add(whole, 1, carry + (remainder ? 1 : 0), limit))
    return std::nullopt;
  return std::chrono::milliseconds{static_cast<int64_t>(whole)};
}

std::optional<uint64_t> parse_size(std::string_view s) {
  auto len = count_digits(s, 0);
  if (len == 0)
    return std::nullopt;
  auto name = s.substr(len);
  uint64_t mult = 0;
  if (name.empty() || name == "B")
    mult = 1;
  else if (name == "KiB")
    mult = uint64_t{1} << 10;
  else if (name == "MiB")
    mult = uint64_t{1} << 20;
  else if (name == "GiB")
    mult = uint64_t{1} << 30;
  else
    return std::nullopt;
  constexpr auto limit = std::numeric_limits<uint64_t>::max();
  uint64_t value = 0;
  for (auto c : s.substr(0, len))
    if (!mul_add(value, 10, static_cast<uint64_t>(c - '0'), limit))
      return std::nullopt;
  if (!mul_add(value, mult, 0, limit))
    return std::nullopt;
  return value;
}

} // namespace btcstream

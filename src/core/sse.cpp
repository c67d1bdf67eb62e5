#include "core/sse.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

namespace btcstream {

namespace {

constexpr int64_t ms_per_day = 86'400'000;

// Howard Hinnant's civil_from_days: exact for every int64 day count, and
// free of gmtime's time_t range and locale.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
}

} // namespace

std::string format_timestamp(int64_t unix_ms) {
  auto days = unix_ms / ms_per_day;
  auto rem = unix_ms % ms_per_day;
  if (rem < 0) {
    rem += ms_per_day;
    --days;
  }
  int64_t y = 0;
  unsigned m = 0;
  unsigned d = 0;
  civil_from_days(days, y, m, d);
  auto ms = static_cast<unsigned>(rem);
  char buf[64];
  auto n
      = std::snprintf(buf, sizeof(buf), "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ",
                      static_cast<long long>(y), m, d, ms / 3'600'000,
                      ms / 60'000 % 60, ms / 1000 % 60, ms % 1000);
  return std::string(buf, static_cast<size_t>(n));
}

std::string format_price(double price) {
  // JSON has no inf or NaN; `null` keeps the document valid should a caller
  // ever break the finite-price invariant.
  if (!std::isfinite(price))
    return "null";
  // Fixed notation where JavaScript uses it too (1e-6 <= |x| < 1e21): plain
  // to_chars picks "1e+05" over "100000" because it is one byte shorter.
  char buf[64];
  auto magnitude = std::fabs(price);
  auto [end, ec] = magnitude >= 1e-6 && magnitude < 1e21
                       ? std::to_chars(buf, buf + sizeof(buf), price,
                                       std::chars_format::fixed)
                       : std::to_chars(buf, buf + sizeof(buf), price);
  if (ec != std::errc{})
    return "null";
  return std::string(buf, end);
}

std::string update_data_json(const update& u) {
  std::string out = R"({"timestamp":")";
  out += format_timestamp(u.ts_ms);
  out += R"(","price":)";
  out += format_price(u.price);
  out += '}';
  return out;
}

std::string update_json(const update& u) {
  std::string out = R"({"id":)";
  out += std::to_string(u.id);
  out += R"(,"timestamp":")";
  out += format_timestamp(u.ts_ms);
  out += R"(","price":)";
  out += format_price(u.price);
  out += '}';
  return out;
}

frame_ptr encode_update(const update& u) {
  std::string out = "id: ";
  out += std::to_string(u.id);
  out += "\ndata: ";
  out += update_data_json(u);
  out += "\n\n";
  return make_frame(out);
}

frame_ptr encode_gap(std::string_view requested,
                     std::optional<uint64_t> oldest) {
  // `replace` instead of throwing on invalid UTF-8: the text came from a
  // client.
  auto quoted
      = nlohmann::json(std::string{requested})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out = "event: gap\ndata: {\"requested\":";
  out += quoted;
  out += ",\"oldest\":";
  out += oldest ? std::to_string(*oldest) : "null";
  out += "}\n\n";
  return make_frame(out);
}

std::string encode_retry(std::chrono::milliseconds retry) {
  return "retry: " + std::to_string(retry.count()) + "\n\n";
}

const frame_ptr& heartbeat_frame() {
  static const frame_ptr hb = make_frame(": hb\n\n");
  return hb;
}

} // namespace btcstream

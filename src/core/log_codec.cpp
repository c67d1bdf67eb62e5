#include "core/log_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace btcstream {

namespace {

using type = redis_value::type;

template<class Reply>
Reply failed(log_failure f, std::string error) {
  Reply r;
  r.failure = f;
  r.error = std::move(error);
  return r;
}

// An error reply is Redis refusing (server); anything else unexpected is a
// reply we do not understand (protocol).
template<class Reply>
Reply wrong_shape(const redis_value& v, const char* what) {
  if (v.kind == type::error)
    return failed<Reply>(log_failure::server, v.str);
  return failed<Reply>(log_failure::protocol, what);
}

} // namespace

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.front() < '0' || s.front() > '9')
    return std::nullopt;
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return n;
}

std::optional<int64_t> parse_i64(std::string_view s) {
  // from_chars takes a '-' but no '+' and no space: exactly what we want.
  if (s.empty() || s == "-")
    return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return n;
}

std::optional<double> parse_price(std::string_view s) {
  double d = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(d)
      || !(d > 0))
    return std::nullopt;
  return d;
}

std::optional<log_entry> decode_entry(const redis_value& v) {
  if (v.kind != type::array || v.elements.size() != 2
      || v.elements[0].kind != type::string
      || v.elements[1].kind != type::array)
    return std::nullopt;
  // Our appends always write "<id>-0"; another sequence number means the
  // entry was not written by the append script.
  std::string_view id_text = v.elements[0].str;
  auto dash = id_text.find('-');
  if (dash == std::string_view::npos || id_text.substr(dash) != "-0")
    return std::nullopt;
  auto id = parse_u64(id_text.substr(0, dash));
  if (!id || *id == 0)
    return std::nullopt;
  const auto& fields = v.elements[1].elements;
  if (fields.size() % 2 != 0)
    return std::nullopt;
  log_entry e;
  e.u.id = *id;
  enum : unsigned { ts = 1, price = 2, prev = 4, at = 8 };
  unsigned seen = 0;
  for (size_t i = 0; i < fields.size(); i += 2) {
    const auto& name = fields[i];
    const auto& value = fields[i + 1];
    if (name.kind != type::string || value.kind != type::string)
      return std::nullopt;
    unsigned bit = 0;
    bool ok = true;
    if (name.str == "ts") {
      bit = ts;
      auto n = parse_i64(value.str);
      ok = n.has_value();
      e.u.ts_ms = n.value_or(0);
    } else if (name.str == "price") {
      bit = price;
      auto p = parse_price(value.str);
      ok = p.has_value();
      e.u.price = p.value_or(0);
    } else if (name.str == "prev") {
      bit = prev;
      auto n = parse_u64(value.str);
      ok = n.has_value();
      e.prev = n.value_or(0);
    } else if (name.str == "at") {
      bit = at;
      auto n = parse_i64(value.str);
      ok = n.has_value();
      e.appended_ms = n.value_or(0);
    } else {
      continue; // room for fields a later version adds
    }
    if (!ok || (seen & bit) != 0)
      return std::nullopt;
    seen |= bit;
  }
  if (seen != (ts | price | prev | at) || e.prev >= e.u.id)
    return std::nullopt;
  return e;
}

/// The millisecond part of an entry's stream id, decodable entry or not.
std::optional<uint64_t> stream_id_ms(const redis_value& item) {
  if (item.kind != type::array || item.elements.empty()
      || item.elements[0].kind != type::string)
    return std::nullopt;
  std::string_view id_text = item.elements[0].str;
  return parse_u64(id_text.substr(0, id_text.find('-')));
}

read_reply decode_range(const redis_value& v) {
  if (v.kind != type::array)
    return wrong_shape<read_reply>(v, "stream entries: not an array");
  read_reply r;
  r.entries.reserve(v.elements.size());
  for (const auto& item : v.elements) {
    // The reader's next read starts after the newest id, so that an entry
    // that cannot be decoded is skipped once, not read forever.
    if (auto ms = stream_id_ms(item))
      r.last_id = std::max(r.last_id, *ms);
    if (auto e = decode_entry(item))
      r.entries.push_back(std::move(*e));
    else
      ++r.malformed;
  }
  return r;
}

read_reply decode_xread(const redis_value& v) {
  if (v.kind == type::nil)
    return {};
  if (v.kind != type::array || v.elements.size() != 1)
    return wrong_shape<read_reply>(v, "XREAD: not one stream");
  const auto& stream = v.elements[0];
  if (stream.kind != type::array || stream.elements.size() != 2
      || stream.elements[0].kind != type::string)
    return failed<read_reply>(log_failure::protocol,
                              "XREAD: not [key, entries]");
  return decode_range(stream.elements[1]);
}

lease_reply decode_lease(const redis_value& v) {
  if (v.kind != type::array || v.elements.size() != 2
      || v.elements[0].kind != type::integer || v.elements[0].integer < 0
      || v.elements[1].kind != type::string)
    return wrong_shape<lease_reply>(v, "lease: not [token, node]");
  lease_reply r;
  r.token = static_cast<uint64_t>(v.elements[0].integer);
  r.node = v.elements[1].str;
  return r;
}

append_reply decode_append(const redis_value& v) {
  append_reply r;
  if (v.is_string("FENCED")) {
    r.fenced = true;
    return r;
  }
  if (v.kind != type::integer || v.integer <= 0)
    return wrong_shape<append_reply>(v, "append: not an id or FENCED");
  r.id = static_cast<uint64_t>(v.integer);
  return r;
}

release_reply decode_release(const redis_value& v) {
  if (v.kind != type::integer || (v.integer != 0 && v.integer != 1))
    return wrong_shape<release_reply>(v, "release: not 0 or 1");
  release_reply r;
  r.released = v.integer == 1;
  return r;
}

} // namespace btcstream

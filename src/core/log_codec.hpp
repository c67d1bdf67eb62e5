#pragma once

#include "core/cluster_log.hpp"
#include "core/redis_value.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace btcstream {

/// Decodes one stream entry `[ "<id>-0", [field, value, ...] ]` with the
/// fields ts, price, prev and at (any order, others ignored). nullopt if it
/// is malformed: an id that is not `<decimal>-0` or is 0, a missing,
/// repeated or unparsable field, a price that is not finite and > 0, or a
/// prev that is not below the id.
std::optional<log_entry> decode_entry(const redis_value& v);

/// Decodes an XRANGE reply (an array of entries), skipping and counting the
/// malformed ones. An error reply fails with `server`; any other shape with
/// `protocol`.
read_reply decode_range(const redis_value& v);

/// Decodes an XREAD reply for one stream: nil (nothing came) or
/// `[[key, entries]]`; like `decode_range` otherwise.
read_reply decode_xread(const redis_value& v);

/// Decodes the lease script's reply `[token, node]`.
lease_reply decode_lease(const redis_value& v);

/// Decodes the append script's reply: the id (an integer > 0), or the
/// status `FENCED`.
append_reply decode_append(const redis_value& v);

/// Decodes the release script's reply: 1 (deleted) or 0 (not ours).
release_reply decode_release(const redis_value& v);

/// A decimal unsigned 64-bit number, digits only, no sign or space.
std::optional<uint64_t> parse_u64(std::string_view s);

/// A decimal signed 64-bit number, an optional '-' then digits.
std::optional<int64_t> parse_i64(std::string_view s);

/// A finite price > 0 as written by `format_price` (or any decimal text
/// std::from_chars reads whole).
std::optional<double> parse_price(std::string_view s);

} // namespace btcstream

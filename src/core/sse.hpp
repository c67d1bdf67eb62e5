#pragma once

#include "core/update.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// RFC 3339 UTC with milliseconds: `2026-11-26T18:45:17.123Z`.
std::string format_timestamp(int64_t unix_ms);

/// The shortest decimal text that reads back as the same double (a JSON
/// number; the value must be finite).
std::string format_price(double price);

/// `{"timestamp":"…","price":…}`: the data line of an update frame.
std::string update_data_json(const update& u);

/// `{"id":…,"timestamp":"…","price":…}`: an update in the REST API.
std::string update_json(const update& u);

/// Encodes an update frame once: `id: <id>\ndata: <json>\n\n`.
frame_ptr encode_update(const update& u);

/// `event: gap\ndata: {"requested":"…","oldest":<id or null>}\n\n`.
frame_ptr encode_gap(std::string_view requested,
                     std::optional<uint64_t> oldest);

/// `retry: <ms>\n\n`, the first bytes of every stream.
std::string encode_retry(std::chrono::milliseconds retry);

/// `: hb\n\n`, one shared instance.
const frame_ptr& heartbeat_frame();

} // namespace btcstream

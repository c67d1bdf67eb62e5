#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace btcstream {

/// Parses a duration such as `250ms`, `5s`, `1.5s`, `2min`, `2m` or `1h`.
/// A unit is required; the value must be >= 0 and fit in 64-bit milliseconds.
/// Sub-millisecond remainders round up (a `0.1ms` interval is 1 ms).
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);

/// Parses a byte size: plain digits (bytes), or with `B`, `KiB`, `MiB`, `GiB`.
std::optional<uint64_t> parse_size(std::string_view s);

} // namespace btcstream

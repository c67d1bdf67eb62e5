#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace btcstream {

/// The wait a `Retry-After` header asks for, in milliseconds from `now_ms`:
/// delay-seconds (`120`) or an IMF-fixdate (`Wed, 26 Nov 2025 18:45:17 GMT`,
/// RFC 9110). A date in the past means 0. Nothing for anything else.
std::optional<int64_t> parse_retry_after(std::string_view value,
                                         int64_t now_ms);

} // namespace btcstream

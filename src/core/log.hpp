#pragma once

#include <string_view>

namespace btcstream {

enum class log_level { debug, info, warn, error };

/// Sets the lowest level written (default info). Call before threads start.
void set_log_level(log_level l);

/// Whether a line at `l` would be written.
bool log_enabled(log_level l);

/// Writes one line `<RFC 3339 time> <level> <msg>` to stderr with a single
/// write(2), so lines from different threads never interleave.
void log(log_level l, std::string_view msg);

} // namespace btcstream

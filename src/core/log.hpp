#pragma once

#include <string_view>

namespace btcstream {

enum class log_level { debug, info, warn, error };

/// How a line looks: `<time> <level> <msg>`, or one JSON object per line
/// `{"ts":"<RFC 3339>","level":"…","msg":"…"}`.
enum class log_format { text, json };

/// Sets the lowest level written (default info). Call before threads start.
void set_log_level(log_level l);

/// Sets the line format (default text). Call before threads start.
void set_log_format(log_format f);

/// Whether a line at `l` would be written.
bool log_enabled(log_level l);

/// Writes one line to stderr with a single write(2), so lines from
/// different threads never interleave.
void log(log_level l, std::string_view msg);

} // namespace btcstream

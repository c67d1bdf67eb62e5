#pragma once

#include "core/update.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace btcstream {

/// What a single node keeps across a clean restart (`--state-file`): its
/// buffered updates, so that a client resuming after an upgrade gets what it
/// missed instead of a gap.
///
/// The file is one JSON object: {"format":"btcstream-state","version":1,
/// "instrument":"BTC-USD","updates":[{"id":…,"ts":…,"price":…},…]}.

/// The file's text for `updates` (oldest first).
std::string encode_state(const std::string& instrument,
                         const std::vector<update>& updates);

/// The outcome of reading a state file.
struct state_read {
  /// The updates to restore, oldest first: valid, unexpired, at most
  /// `max_entries` (the newest).
  std::vector<update> updates;
  /// Why the file was not used (empty: it was, or there was none).
  std::string error;
  /// Entries dropped because they expired.
  size_t expired = 0;
};

/// Validates a state file's text and keeps what is still useful. A file of
/// another format, version or instrument, malformed JSON, or an entry that
/// is not a valid update in strictly increasing id order makes the whole
/// file ignored (with `error`), never partly trusted.
state_read decode_state(const std::string& text, const std::string& instrument,
                        int64_t now_ms, std::chrono::milliseconds ttl,
                        size_t max_entries);

/// Writes `text` to `path` atomically (a temporary file in the same
/// directory, fsync, rename). Returns an error message, empty on success.
std::string write_file_atomically(const std::string& path,
                                  const std::string& text);

/// Reads a whole file; `missing` is set when it does not exist. Returns an
/// error message, empty on success.
std::string read_file(const std::string& path, std::string& text,
                      bool& missing);

} // namespace btcstream

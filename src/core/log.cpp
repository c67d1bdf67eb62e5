#include "core/log.hpp"

#include "core/clock.hpp"
#include "core/sse.hpp"

#include <atomic>
#include <string>
#include <unistd.h>

namespace btcstream {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};

const char* name(log_level l) {
  switch (l) {
  case log_level::debug:
    return "debug";
  case log_level::info:
    return "info";
  case log_level::warn:
    return "warn";
  case log_level::error:
    return "error";
  }
  return "?";
}

} // namespace

void set_log_level(log_level l) {
  min_level.store(static_cast<int>(l), std::memory_order_relaxed);
}

bool log_enabled(log_level l) {
  return static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

void log(log_level l, std::string_view msg) {
  if (!log_enabled(l))
    return;
  std::string line = format_timestamp(system_wall_clock{}.now_ms());
  line += ' ';
  line += name(l);
  line += ' ';
  line += msg;
  line += '\n';
  // A partial write to stderr is not worth retrying; nothing to recover.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace btcstream

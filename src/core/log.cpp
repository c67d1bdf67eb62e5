#include "core/log.hpp"

#include "core/clock.hpp"
#include "core/sse.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <unistd.h>

namespace btcstream {

namespace {

std::atomic<int> min_level{static_cast<int>(log_level::info)};
std::atomic<bool> json_lines{false};

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

void set_log_format(log_format f) {
  json_lines.store(f == log_format::json, std::memory_order_relaxed);
}

void set_log_level(log_level l) {
  min_level.store(static_cast<int>(l), std::memory_order_relaxed);
}

bool log_enabled(log_level l) {
  return static_cast<int>(l) >= min_level.load(std::memory_order_relaxed);
}

void log(log_level l, std::string_view msg) {
  if (!log_enabled(l))
    return;
  // Stamped and written under one lock, so that lines from different
  // threads reach stderr in the order of their timestamps (a reader sorts
  // by neither). Logging is off the hot paths.
  static std::mutex order;
  std::lock_guard<std::mutex> guard{order};
  auto ts = format_timestamp(system_wall_clock{}.now_ms());
  std::string line;
  if (json_lines.load(std::memory_order_relaxed)) {
    nlohmann::ordered_json j{{"ts", ts}, {"level", name(l)}, {"msg", msg}};
    // Replace invalid UTF-8 rather than throw: a log line must never fail.
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = ts + ' ' + name(l) + ' ' + std::string{msg};
  }
  line += '\n';
  // A partial write to stderr is not worth retrying; nothing to recover.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace btcstream

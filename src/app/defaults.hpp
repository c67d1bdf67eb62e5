#pragma once

#include <chrono>
#include <cstdint>

// Every default of btcstream, in one place (DESIGN.md, "Configuration").
namespace btcstream::defaults {

using namespace std::chrono_literals;

inline constexpr const char* listen = "0.0.0.0:8080";
inline constexpr auto interval = 5s;
inline constexpr auto history_ttl = 1h;
inline constexpr const char* upstream_url
    = "https://data-api.coindesk.com/index/cc/v1/latest/tick"
      "?market=ccix&instruments=BTC-USD";
inline constexpr auto heartbeat = 15s;
inline constexpr auto retry = 3s;
inline constexpr uint64_t client_queue = 256 * 1024;
inline constexpr auto stall_timeout = 60s;
inline constexpr const char* cors_origin = "*";
inline constexpr uint64_t max_http_connections = 512;
inline constexpr auto shutdown_grace = 1s;
/// From SIGTERM to the exit at most (--shutdown-grace is at most 1 s less).
inline constexpr auto exit_within = 5s;
inline constexpr unsigned io_threads = 2;
inline constexpr unsigned actor_threads = 2;
/// Descriptors kept in reserve below the open-files limit (upstream, Redis,
/// probes) when --max-clients is derived.
inline constexpr uint64_t reserved_fds = 100;
/// How long /healthz waits for the core actors' answers.
inline constexpr auto health_timeout = 2s;

/// How long the log reader's blocking read waits (cluster mode); its
/// connection counts as dead 2 s after that without an answer.
inline constexpr auto redis_block = 2s;

} // namespace btcstream::defaults

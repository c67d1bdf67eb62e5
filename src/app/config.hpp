#pragma once

#include "core/log.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace btcstream {

/// The effective configuration, after flags, environment and defaults.
struct config {
  std::string listen_host;
  std::string listen_port;
  /// `--reuse-port`: several processes share the listening port.
  bool reuse_port = false;
  /// `--admin-listen`: a second listener for /metrics, /healthz, /readyz and
  /// /api/v1/info only; empty host: none.
  std::string admin_host;
  std::string admin_port;
  /// `--max-stream-age`: streams end cleanly after this age, ±10 % per
  /// stream (0: never).
  std::chrono::milliseconds max_stream_age{0};
  /// `--state-file`: the buffer is saved here on shutdown and loaded at start
  /// (one node; empty: none).
  std::string state_file;
  std::chrono::milliseconds interval;
  std::chrono::milliseconds history_ttl;
  /// 0: derived, ⌈TTL ÷ interval⌉ + 1.
  uint64_t history_max = 0;
  std::string upstream_url;
  /// A PEM file of extra trusted CAs for the upstream; empty: system store.
  std::string upstream_ca;
  /// Never logged or shown.
  std::string api_key;
  /// Empty: the installed web/ (or the source tree's when run from a build).
  std::string web_root;
  std::chrono::milliseconds heartbeat;
  std::chrono::milliseconds retry;
  uint64_t client_queue = 0;
  std::chrono::milliseconds stall_timeout;
  /// 0: derived from the open-files limit.
  uint64_t max_clients = 0;
  /// Bound on connections that are not streams.
  uint64_t max_http_connections = 512;
  /// After SIGTERM: readiness reports draining and open connections are
  /// served this long before the streams end.
  std::chrono::milliseconds shutdown_grace{1000};
  std::string cors_origin;
  log_level level = log_level::info;
  log_format format = log_format::text;
  /// `--healthcheck`: probe the running service instead of running one.
  bool healthcheck = false;
  /// What the start logs as warnings: BTCSTREAM_* variables that name no
  /// flag (a typo would otherwise be a setting silently not applied).
  std::vector<std::string> warnings;
  unsigned io_threads = 2;
  unsigned actor_threads = 2;
  /// Cluster mode: `--redis` as given (empty: one node in memory). Never
  /// logged with its password.
  std::string redis_url;
  /// `--redis-password-file`'s content (overrides a password in the URL).
  std::string redis_password;
  /// Key prefix in Redis (several deployments may share one Redis).
  std::string redis_prefix = "btcstream";
  /// This node's id in the lease (default hostname:pid).
  std::string node_id;
  /// The leader's lease.
  std::chrono::milliseconds lease_ttl{10000};
  /// `--actor-policy stealing`: CAF's work-stealing scheduler instead of
  /// work sharing (for benchmarks: see docs/performance.md).
  bool work_stealing = false;
};

/// The outcome of reading the command line and environment: a config to run,
/// or text to print and an exit code (`--help`, `--version`, a bad value).
struct config_result {
  std::optional<config> cfg;
  int exit_code = 0;
  std::string output;
};

/// Reads flags, then `BTCSTREAM_*` variables, then `COINDESK_API_KEY`
/// (earlier wins), then defaults. Bad values name the flag.
config_result parse_config(int argc, const char* const* argv);

/// The effective configuration as one log line, the key redacted.
std::string describe(const config& c);

} // namespace btcstream

#pragma once

#include "core/metrics.hpp"
#include "core/service_port.hpp"
#include "core/stream_port.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace btcstream {

/// What the HTTP front end needs from the configuration.
struct server_options {
  /// Canonical path of the web root (symlinks resolved).
  std::filesystem::path web_root;
  /// Access-Control-Allow-Origin; `Vary: Origin` is added unless `*`.
  std::string cors_origin = "*";
  /// The SSE `retry:` hint before jitter.
  std::chrono::milliseconds retry{3000};
  /// Bound on unsent live bytes per SSE client.
  uint64_t client_queue = 256 * 1024;
  /// An SSE client whose socket takes no bytes for this long is dropped.
  std::chrono::milliseconds stall_timeout{60000};
  /// Bound on concurrent SSE clients.
  uint64_t max_clients = 1000;
  /// Time allowed to read a request head.
  std::chrono::milliseconds head_timeout{10000};
  /// Idle time allowed between requests on a kept-alive connection.
  std::chrono::milliseconds idle_timeout{30000};
  /// Bound on a request head (431 beyond).
  uint32_t max_head_bytes = 8 * 1024;
  /// Bound on the header fields of a request (431 beyond), whatever their
  /// size.
  size_t max_header_fields = 100;
  /// Bound on a request body (413 beyond); bodies are read and ignored.
  uint64_t max_body_bytes = 16 * 1024;
  /// Bound on connections that are not streams (503 beyond), on the public
  /// listener.
  uint64_t max_http_connections = 512;
  /// The admin listener's own bound: a flood on the public port must not
  /// shut out the scrapes and probes that would show it.
  uint64_t max_admin_connections = 64;
  /// For /api/v1/info and /readyz.
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds history_ttl{3600000};
  uint64_t history_max = 721;
  std::chrono::milliseconds heartbeat{15000};
  /// Cluster mode: this node's id (--node-id); empty on a single node.
  std::string node_id;
};

/// State shared by the listener and every session. Only atomics are shared
/// across threads; nothing here is guarded by a mutex.
struct server_context {
  server_options opts;
  /// Opens SSE streams (the actor side).
  std::shared_ptr<stream_port> streams;
  /// Answers REST and health queries (the actor side).
  std::shared_ptr<service_port> services;
  /// Every metric (relaxed atomics).
  std::shared_ptr<metrics> stats = std::make_shared<metrics>();
  /// SSE clients currently connected (for --max-clients).
  std::atomic<uint64_t> sse_clients{0};
  /// Connections to the admin listener (within metrics' http_sessions),
  /// counted apart for their own bound.
  std::atomic<int64_t> admin_sessions{0};
  /// Set on shutdown: new streams are refused.
  std::atomic<bool> draining{false};
};

} // namespace btcstream

#pragma once

#include "core/fetch_policy.hpp"

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

namespace btcstream {

/// A Prometheus histogram over fixed bounds (seconds), lock-free: relaxed
/// atomics, so observers on any thread never wait. The counters are striped
/// by thread, each stripe on its own cache lines: the I/O threads observe
/// every delivery to every client, and one shared set of counters would move
/// between their cores at each observation.
class histogram {
public:
  /// Upper bounds in seconds, +Inf implied.
  static constexpr std::array<double, 14> bounds
      = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  void observe(double seconds);

  /// Appends the `_bucket`, `_sum` and `_count` lines of `name`.
  void render(std::string& out, const std::string& name) const;

  uint64_t count() const;

private:
  struct alignas(64) stripe {
    std::array<std::atomic<uint64_t>, bounds.size() + 1> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  static constexpr size_t stripes = 8;
  std::array<stripe, stripes> stripes_{};
};

/// Why an SSE client went away (`btcstream_sse_disconnects_total{reason}`).
enum class disconnect_reason {
  client_closed,
  slow_consumer,
  shutdown,
  error,
  max_age,
};
inline constexpr size_t disconnect_reasons = 5;
const char* to_string(disconnect_reason r);

/// Why a /stream request was refused (`btcstream_sse_rejected_total`).
enum class reject_reason { max_clients, bad_request };
inline constexpr size_t reject_reasons = 2;
const char* to_string(reject_reason r);

/// The routes of `btcstream_http_requests_total{route}`.
enum class route_label {
  stream,
  price,
  prices,
  info,
  healthz,
  readyz,
  metrics,
  static_file,
  unknown,
};
inline constexpr size_t route_labels = 9;
const char* to_string(route_label r);

/// Which cluster-log operation failed (`btcstream_redis_errors_total{op}`).
enum class redis_op { connect, lease, append, read, decode };
inline constexpr size_t redis_ops = 5;
const char* to_string(redis_op o);

/// The outcome of an append (`btcstream_cluster_appends_total{result}`).
enum class append_result { ok, fenced, error };
inline constexpr size_t append_results = 3;
const char* to_string(append_result r);

/// The cluster-mode metrics (rendered only in cluster mode).
struct cluster_metrics {
  /// Whether this node holds the lease and polls (0/1).
  std::atomic<int64_t> leader{0};
  std::atomic<uint64_t> lease_acquisitions{0};
  std::atomic<uint64_t> lease_losses{0};
  std::array<std::atomic<uint64_t>, append_results> appends{};
  /// Whether the reader's connection answers (0/1).
  std::atomic<int64_t> redis_up{0};
  std::array<std::atomic<uint64_t>, redis_ops> redis_errors{};
  /// From Redis's append to the local store, for the newest entry.
  std::atomic<double> ingest_lag_seconds{0};
  std::atomic<uint64_t> ingested{0};
  std::atomic<uint64_t> backfilled{0};
  std::atomic<uint64_t> holes{0};
  /// Whether the node has backfilled the log once (readiness).
  std::atomic<bool> ready{false};

  void count_error(redis_op o) {
    redis_errors[static_cast<size_t>(o)].fetch_add(1,
                                                   std::memory_order_relaxed);
  }
  void count_append(append_result r) {
    appends[static_cast<size_t>(r)].fetch_add(1, std::memory_order_relaxed);
  }
};

/// Every metric btcstream exports. One instance per process, shared by
/// pointer (no global); every field is a relaxed atomic, written by the
/// component that owns the fact and read by the exposition.
struct metrics {
  // SSE clients.
  /// --max-clients as in force (its default follows the open-files limit):
  /// what an alert divides the clients by.
  std::atomic<uint64_t> sse_max_clients{0};
  std::atomic<uint64_t> sse_connections{0};
  std::array<std::atomic<uint64_t>, disconnect_reasons> sse_disconnects{};
  std::array<std::atomic<uint64_t>, reject_reasons> sse_rejected{};
  // Events.
  std::atomic<uint64_t> events_published{0};
  histogram event_fanout;
  histogram event_delivery;
  std::atomic<uint64_t> replayed_events{0};
  std::atomic<uint64_t> gap_events{0};
  // Upstream.
  std::array<std::atomic<uint64_t>, 7> upstream_requests{}; // by outcome
  histogram upstream_request;
  std::atomic<uint64_t> upstream_skipped_ticks{0};
  std::atomic<int64_t> last_price_ts_ms{0}; // 0: no price yet
  std::atomic<double> last_price_usd{0};
  // Buffer.
  std::atomic<uint64_t> buffer_entries{0};
  std::atomic<int64_t> buffer_oldest_ts_ms{0}; // 0: empty
  // HTTP: requests by route and status code (see `code_index`).
  static constexpr std::array<int, 10> codes
      = {200, 204, 304, 400, 404, 405, 413, 431, 503, 0 /* other */};
  std::array<std::array<std::atomic<uint64_t>, codes.size()>, route_labels>
      http_requests{};
  // Live objects (for leak checks under churn).
  std::atomic<int64_t> sse_sessions{0};
  std::atomic<int64_t> http_sessions{0};
  std::atomic<int64_t> connection_actors{0};
  // Cluster mode: set once before any actor runs.
  bool cluster_mode = false;
  cluster_metrics cluster;

  void count_disconnect(disconnect_reason r) {
    sse_disconnects[static_cast<size_t>(r)].fetch_add(
        1, std::memory_order_relaxed);
  }
  void count_rejection(reject_reason r) {
    sse_rejected[static_cast<size_t>(r)].fetch_add(1,
                                                   std::memory_order_relaxed);
  }
  void count_upstream(fetch_outcome o) {
    upstream_requests[static_cast<size_t>(o)].fetch_add(
        1, std::memory_order_relaxed);
  }
  void count_request(route_label r, int code);
};

/// Times one fan-out: created by the broadcaster with the number of
/// subscribers; each connection reports once when it has handed the frame to
/// its session (or decided not to); the last one records
/// `btcstream_event_fanout_seconds`.
class fanout_probe {
public:
  /// @param m where the time goes; kept alive by the probe, which a worker
  /// may still count down after the last receiver is gone.
  fanout_probe(size_t receivers, int64_t stored_ns, std::shared_ptr<metrics> m)
      : remaining_(receivers), stored_ns_(stored_ns), metrics_(std::move(m)) {}

  /// One receiver of `probe` has handed the frame on. Counted at once, or,
  /// on a thread that batches (batch_handed_counts), on the thread until it
  /// meets another probe or publishes.
  static void handed(const std::shared_ptr<fanout_probe>& probe);

  /// `n` receivers have handed the frame on.
  void count_down(size_t n);

private:
  std::atomic<size_t> remaining_;
  int64_t stored_ns_;
  std::shared_ptr<metrics> metrics_;
};

/// From now on, fanout_probe::handed on this thread counts on the thread:
/// one update of the probe's shared count per batch instead of one per
/// receiver, so that the threads of a fan-out do not pass that cache line
/// between their cores at every delivery. The thread must then call
/// publish_handed_counts() before it waits for work, and often (a
/// scheduler worker: each time it takes jobs).
void batch_handed_counts();

/// Hands this thread's batched count to its probe, if it has one.
void publish_handed_counts();

/// Now on the steady clock, in nanoseconds.
int64_t steady_now_ns();

/// Process figures as the Prometheus client libraries name them.
struct process_stats {
  double resident_memory_bytes = 0;
  double cpu_seconds = 0;
  double open_fds = 0;
  double max_fds = 0;
  double start_time_seconds = 0;
};

/// Reads /proc/self (Linux). Fields it cannot read stay 0.
process_stats read_process_stats();

/// The Prometheus text exposition (format 0.0.4) of everything.
/// @param sse_clients the gauge `btcstream_sse_clients`.
/// @param now_ms the wall clock, for the age gauges.
/// @param actors the actors running now (`btcstream_live_objects`, `actor`).
std::string render_metrics(const metrics& m, uint64_t sse_clients,
                           int64_t now_ms, const process_stats& p,
                           int64_t actors);

} // namespace btcstream

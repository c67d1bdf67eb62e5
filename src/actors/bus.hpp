#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/cluster_log.hpp"
#include "core/lease.hpp"
#include "core/metrics.hpp"

#include <caf/timespan.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace btcstream {

/// What the bus needs to know of the configuration.
struct bus_options {
  /// This node's id (--node-id).
  std::string node;
  /// --lease-ttl.
  std::chrono::milliseconds lease_ttl{10000};
  /// --interval: a new leader's first poll waits for one interval after the
  /// newest entry in the log.
  std::chrono::milliseconds interval{5000};
  /// The log's trimming, as the buffer's (--history-max, --history-ttl).
  uint64_t max_len = 721;
  std::chrono::milliseconds ttl{3600000};
};

/// The bus's state.
struct bus_state {
  bus_options opts;
  /// The Redis connection for the lease and appends.
  std::shared_ptr<cluster_log> log;
  /// Told to start and stop polling.
  fetcher_actor fetcher;
  std::shared_ptr<const wall_clock> clock;
  std::shared_ptr<metrics> stats;
  /// This node's view of the lease; engaged by the behaviour.
  std::optional<lease_view> lease;
  /// Whether a lease request is in flight (one at a time).
  bool asking = false;
  /// The newest entry read from the log (reader), for ids and the first poll.
  log_entry newest;
  /// Released for a shutdown: the lease is never asked for again.
  bool released = false;
  /// The answer to the release, once Redis has answered.
  caf::typed_response_promise<bool> release_answer;
  /// Failed appends in a row (logged on the first and every 100th).
  uint64_t append_failures = 0;

  static inline const char* name = "bus";
};

/// Cluster mode: holds the lease (only the holder polls the upstream) and
/// appends the fetcher's updates to the log with the lease's token, so that
/// a deposed leader cannot append (DESIGN.md, "The leader"). Updates are
/// never retried: an append that timed out may have happened.
/// @param redis the Redis connection for the lease and appends.
/// @param clock the wall clock.
/// @param stats the metrics.
/// @param opts node id, lease TTL, interval, trimming.
bus_actor::behavior_type bus(bus_actor::stateful_pointer<bus_state> self,
                             std::shared_ptr<cluster_log> redis,
                             std::shared_ptr<const wall_clock> clock,
                             std::shared_ptr<metrics> stats, bus_options opts);

} // namespace btcstream

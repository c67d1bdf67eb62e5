#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/cluster_log.hpp"
#include "core/metrics.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace btcstream {

/// The reader's state.
struct reader_state {
  /// The Redis connection for reads (a blocking read holds it).
  std::shared_ptr<cluster_log> log;
  /// Receives every entry, in log order.
  buffer_actor buffer;
  /// Told the newest entry (ids, the first poll of a new leader).
  bus_actor bus;
  std::shared_ptr<const wall_clock> clock;
  /// Jitter for the reconnect backoff.
  std::shared_ptr<random_source> rng;
  std::shared_ptr<metrics> stats;
  /// How long a blocking read waits.
  std::chrono::milliseconds block{2000};
  /// Entries per read.
  size_t batch = 500;
  /// The newest stream id read: the next read starts after it.
  uint64_t last = 0;
  /// Whether the reader is catching up (at start, after a failure): reads
  /// do not block, and what they return counts as backfilled.
  bool catching_up = true;
  /// Failed reads in a row (backoff, log rate).
  uint64_t failures = 0;

  static inline const char* name = "reader";
};

/// Cluster mode: follows the log. At start and after every failure it
/// catches up without blocking (the backfill) until a read comes back short;
/// then it waits in blocking reads. Every entry goes to the buffer in log
/// order; the first complete backfill makes the node ready. A failed read is
/// retried after 250 ms doubling to 5 s, ±20 % jitter.
/// @param redis the Redis connection for reads.
/// @param buffer receives every entry.
/// @param bus told the newest entry.
/// @param clock the wall clock (ingest lag).
/// @param rng jitter.
/// @param stats the metrics.
/// @param block how long a blocking read waits (> 0).
reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       std::shared_ptr<cluster_log> redis, buffer_actor buffer, bus_actor bus,
       std::shared_ptr<const wall_clock> clock,
       std::shared_ptr<random_source> rng, std::shared_ptr<metrics> stats,
       std::chrono::milliseconds block);

} // namespace btcstream

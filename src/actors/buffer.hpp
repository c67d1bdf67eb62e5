#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/metrics.hpp"
#include "core/ring_buffer.hpp"

#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

namespace btcstream {

/// A history query that waits for the log to reach its resume id.
struct waiting_query {
  /// Names the wait's timer message.
  uint64_t key = 0;
  resume_point from;
  uint64_t upto = 0;
  caf::typed_response_promise<history> reply;
};

/// The buffer's state.
struct buffer_state {
  /// The stored updates with their frames; created by the behaviour.
  std::optional<ring_buffer> ring;
  /// Receives every stored update.
  broadcaster_actor broadcaster;
  /// The latest update stored: the last known price even once expired.
  std::optional<update> last;
  /// The buffer gauges and published-events counter.
  std::shared_ptr<metrics> stats;
  /// Wall clock for TTL expiry.
  std::shared_ptr<const wall_clock> clock;
  /// How long a resume id newer than any held may wait for the log to reach
  /// it (cluster mode: one interval; zero on one node).
  caf::timespan lag_wait{0};
  /// The queries waiting so, oldest first.
  std::vector<waiting_query> waiting;
  /// The key of the next wait.
  uint64_t next_key = 0;

  static inline const char* name = "buffer";
};

/// Encodes each update ONCE into its SSE frame, stores both, publishes them
/// to the broadcaster, and answers history queries. Expiry by TTL is lazy:
/// it runs before every push and query, so no timer is needed. In cluster
/// mode it stores the log's entries and finds the holes between them.
/// @param capacity the ring's capacity (--history-max, >= 1).
/// @param ttl the time to live of an entry (--history-ttl).
/// @param broadcaster receives every stored update.
/// @param clock the wall clock.
/// @param stats the metrics.
/// @param lag_wait how long a resume id newer than any held waits for the
/// log (zero: not at all).
buffer_actor::behavior_type
buffer(buffer_actor::stateful_pointer<buffer_state> self, size_t capacity,
       std::chrono::milliseconds ttl, broadcaster_actor broadcaster,
       std::shared_ptr<const wall_clock> clock, std::shared_ptr<metrics> stats,
       caf::timespan lag_wait);

} // namespace btcstream

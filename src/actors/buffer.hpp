#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/metrics.hpp"
#include "core/ring_buffer.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

namespace btcstream {

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

  static inline const char* name = "buffer";
};

/// Encodes each update ONCE into its SSE frame, stores both, publishes them
/// to the broadcaster, and answers history queries. Expiry by TTL is lazy:
/// it runs before every push and query, so no timer is needed.
/// @param capacity the ring's capacity (--history-max, >= 1).
/// @param ttl the time to live of an entry (--history-ttl).
/// @param broadcaster receives every stored update.
/// @param clock the wall clock.
/// @param stats the metrics.
buffer_actor::behavior_type
buffer(buffer_actor::stateful_pointer<buffer_state> self, size_t capacity,
       std::chrono::milliseconds ttl, broadcaster_actor broadcaster,
       std::shared_ptr<const wall_clock> clock, std::shared_ptr<metrics> stats);

} // namespace btcstream

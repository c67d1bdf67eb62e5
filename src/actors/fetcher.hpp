#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/upstream_client.hpp"

#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace btcstream {

/// The fetcher's state.
struct fetcher_state {
  /// The network port; answers arrive as `fetched` messages.
  std::shared_ptr<upstream_client> client;
  /// Receives every valid update.
  buffer_actor buffer;
  /// Wall clock: retrieval times and ids.
  std::shared_ptr<const wall_clock> clock;
  /// The instrument to read from each answer (e.g. "BTC-USD").
  std::string instrument;
  /// Time between polls.
  caf::timespan interval;
  /// When the next tick is due; advances by whole intervals, never drifts.
  caf::actor_clock::time_point next_tick;
  /// No request before this time: the upstream's `Retry-After`.
  caf::actor_clock::time_point not_before;
  /// Whether a request is in flight (at most one).
  bool in_flight = false;
  /// The last id assigned, 0 if none.
  uint64_t last_id = 0;
  /// The last timestamp assigned (unix ms), 0 if none.
  int64_t last_ts = 0;
  /// Ticks skipped because a request was still in flight or overdue.
  uint64_t skipped = 0;
  /// Unusable answers in a row; logs only the first and every 100th.
  uint64_t failures_in_row = 0;

  static inline const char* name = "fetcher";
};

/// Polls the upstream on a fixed-rate schedule (ticks at start + k·interval;
/// a tick that finds a request in flight is skipped, missed ticks are never
/// bursted), validates each answer and assigns the update's id. A 429 or 503
/// with `Retry-After` suspends polling until then, even beyond the interval.
/// @param client the upstream port.
/// @param buffer receives every valid update.
/// @param clock the wall clock.
/// @param instrument the instrument to read (e.g. "BTC-USD").
/// @param interval time between polls (> 0).
fetcher_actor::behavior_type
fetcher(fetcher_actor::stateful_pointer<fetcher_state> self,
        std::shared_ptr<upstream_client> client, buffer_actor buffer,
        std::shared_ptr<const wall_clock> clock, std::string instrument,
        caf::timespan interval);

} // namespace btcstream

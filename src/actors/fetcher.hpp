#pragma once

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/fetch_policy.hpp"
#include "core/metrics.hpp"
#include "core/upstream_client.hpp"

#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace btcstream {

/// The fetcher's state.
struct fetcher_state {
  /// The network port; answers arrive as `fetched` messages.
  std::shared_ptr<upstream_client> client;
  /// Receives every valid update: the buffer, or the bus in cluster mode.
  update_sink_actor sink;
  /// Wall clock: retrieval times, ids, HTTP-dates.
  std::shared_ptr<const wall_clock> clock;
  /// Jitter for retries.
  std::shared_ptr<random_source> rng;
  /// The failure policy (retries, Retry-After, 401/403 pause).
  std::optional<fetch_policy> policy;
  /// The instrument to read from each answer (e.g. "BTC-USD").
  std::string instrument;
  /// Time between polls.
  caf::timespan interval;
  /// The policy's timeline starts here (CAF's clock).
  caf::actor_clock::time_point origin;
  /// When the next tick is due; advances by whole intervals, never drifts.
  caf::actor_clock::time_point next_tick;
  /// No request before this time (Retry-After, 401/403 pause).
  caf::actor_clock::time_point not_before;
  /// Identifies the one retry that may still start; bumped by every request.
  uint64_t attempt = 0;
  /// When the request in flight started.
  caf::actor_clock::time_point request_started;
  /// Upstream outcomes, durations, skipped ticks.
  std::shared_ptr<metrics> stats;
  /// Whether a request is in flight (at most one).
  bool in_flight = false;
  /// Whether a 401/403 pause is on (logged once when it starts).
  bool unauthorized = false;
  /// Whether the fetcher polls (always on one node; while leading in cluster
  /// mode).
  bool active = false;
  /// No request starts after this time: the lease's deadline in cluster
  /// mode (a fetcher resumed after a pause must not poll before the bus has
  /// noticed the lease is gone); never on one node.
  caf::actor_clock::time_point lead_until = caf::actor_clock::time_point::max();
  /// Identifies the one tick chain that may still run; bumped by every
  /// start and stop.
  uint64_t epoch = 0;
  /// The last id assigned, 0 if none.
  uint64_t last_id = 0;
  /// The last timestamp assigned (unix ms), 0 if none.
  int64_t last_ts = 0;

  static inline const char* name = "fetcher";
};

/// Polls the upstream on a fixed-rate schedule (ticks at start + k·interval;
/// a tick that finds a request in flight or a pause is skipped, missed ticks
/// are never bursted), applies the failure policy (`fetch_policy`: retries
/// with backoff before the next tick, Retry-After, the 401/403 pause),
/// validates each answer and assigns the update's id. In cluster mode it
/// polls only between `lead` and `follow`, and its ids are a floor that the
/// log's append raises if needed.
/// @param client the upstream port.
/// @param sink receives every valid update.
/// @param clock the wall clock.
/// @param rng randomness for retry jitter.
/// @param instrument the instrument to read (e.g. "BTC-USD").
/// @param interval time between polls (> 0).
/// @param stats the metrics.
/// @param active whether to poll from the start (one node) or wait for
/// `lead` (cluster mode).
/// @param last the newest update restored from a state file (ids and
/// timestamps stay above it), or a default update.
fetcher_actor::behavior_type
fetcher(fetcher_actor::stateful_pointer<fetcher_state> self,
        std::shared_ptr<upstream_client> client, update_sink_actor sink,
        std::shared_ptr<const wall_clock> clock,
        std::shared_ptr<random_source> rng, std::string instrument,
        caf::timespan interval, std::shared_ptr<metrics> stats, bool active,
        update last);

} // namespace btcstream

#pragma once

#include "actors/actors.hpp"
#include "actors/element_pool.hpp"
#include "core/metrics.hpp"

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace btcstream {

/// One part of the fan-out: a share of the subscribers, which it forwards
/// every update to, and its own mailbox elements.
using shard_actor = caf::typed_actor<
    // An update whose probe counts this shard as one part, from the
    // broadcaster.
    caf::reacts_to<atom::publish, stored>,
    // A new subscriber, from the broadcaster.
    caf::reacts_to<atom::subscribe, connection_actor>,
    // Heartbeat to all, from the broadcaster.
    caf::reacts_to<atom::heartbeat>,
    // The broadcaster ended for this reason: end too, and so the subscribers.
    caf::reacts_to<atom::ended, caf::error>,
    // Replies with the number of subscribers.
    caf::replies_to<atom::ping>::with<uint64_t>>;

/// A shard's state.
struct shard_state {
  /// Subscribed connections, iterated for every update; shared with what
  /// ends them when the shard ends, after this state is gone.
  std::shared_ptr<std::vector<connection_actor>> subscribers
      = std::make_shared<std::vector<connection_actor>>();
  /// Position of each subscriber in `subscribers`, for O(1) removal on DOWN.
  std::unordered_map<caf::actor_addr, size_t> index;
  /// The live messages' mailbox elements.
  element_pool pool;

  static inline const char* name = "broadcaster.shard";
};

/// The broadcaster's state.
struct broadcaster_state {
  /// The fan-out's parts; shard `i` runs on scheduler worker `i` (if the
  /// scheduler is btcstream's).
  std::vector<shard_actor> shards;
  /// Id of the last update forwarded (0 if none): the `upto` of the seam.
  uint64_t last_forwarded = 0;
  /// Time of the last frame or heartbeat sent to everybody.
  caf::actor_clock::time_point last_traffic;
  /// Silence after which a heartbeat goes out.
  caf::timespan heartbeat;
  /// Where the fan-out time is recorded.
  std::shared_ptr<metrics> stats;

  static inline const char* name = "broadcaster";
};

/// Forwards each stored update to every subscribed connection, forgets dead
/// ones, and sends one `: hb` to all after `heartbeat` without traffic. One
/// timer serves every connection: all of them see the same live traffic.
///
/// The subscribers are split over `shards` shards by actor id, and shard
/// `i` is run by scheduler worker `i`: each worker then makes, enqueues
/// and runs its own share of a fan-out's deliveries, and the lines a
/// delivery writes stay on one core (docs/performance.md, issue 14).
/// @param heartbeat the silence before a heartbeat (> 0).
/// @param stats the metrics (event_fanout_seconds).
/// @param shards the number of shards (> 0): the scheduler's workers.
broadcaster_actor::behavior_type
broadcaster(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            caf::timespan heartbeat, std::shared_ptr<metrics> stats,
            size_t shards);

} // namespace btcstream

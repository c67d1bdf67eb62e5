#pragma once

#include "actors/actors.hpp"
#include "core/metrics.hpp"

#include <caf/actor_addr.hpp>
#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace btcstream {

/// Subscribers in one shard of the broadcaster's fan-out.
inline constexpr size_t subscribers_per_shard = 64;

/// One part of the fan-out: up to `subscribers_per_shard` subscribers, which
/// it forwards every update and heartbeat to.
using shard_actor = caf::typed_actor<
    // An update, from the broadcaster.
    caf::reacts_to<atom::publish, stored>,
    // A new subscriber, from the broadcaster.
    caf::reacts_to<atom::subscribe, connection_actor>,
    // A subscriber that ended, from the broadcaster.
    caf::reacts_to<atom::forget, caf::actor_addr>,
    // Heartbeat to all, from the broadcaster.
    caf::reacts_to<atom::heartbeat>,
    // The broadcaster ended for this reason: end too, and so the subscribers.
    caf::reacts_to<atom::ended, caf::error>>;

/// A shard's state.
struct shard_state {
  /// Its subscribers; shared with what ends them when the shard ends, after
  /// this state is gone.
  std::shared_ptr<std::vector<connection_actor>> subscribers
      = std::make_shared<std::vector<connection_actor>>();

  static inline const char* name = "broadcaster.shard";
};

/// The broadcaster's state.
struct broadcaster_state {
  /// The fan-out's parts (an empty place where a shard ended); shared with
  /// what ends them when the broadcaster ends, after this state is gone.
  std::shared_ptr<std::vector<shard_actor>> shards
      = std::make_shared<std::vector<shard_actor>>();
  /// Subscribers in each shard.
  std::vector<size_t> fill;
  /// Places with room; the last one takes the next subscriber.
  std::vector<size_t> open;
  /// The shard of each subscriber.
  std::unordered_map<caf::actor_addr, size_t> index;
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
/// The subscribers are kept in shards of up to `subscribers_per_shard`,
/// which the broadcaster spawns as they are needed (linked, and hidden: not
/// counted among the running actors) and ends when their last subscriber
/// has left. An update goes to each shard with subscribers, and the shard
/// forwards it to its own: a fan-out is then a few jobs in the scheduler's
/// shared queue, one per shard, each of which makes its receivers' mailbox
/// elements, enqueues them and runs the receivers on one worker
/// (run_woken_here), and any idle worker takes the next shard
/// (docs/performance.md, issue 14). A connection stays in its shard for its
/// life, and each shard forwards in order, so every subscriber gets the
/// updates in the order they were published.
/// @param heartbeat the silence before a heartbeat (> 0).
/// @param stats the metrics (event_fanout_seconds).
broadcaster_actor::behavior_type
broadcaster(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            caf::timespan heartbeat, std::shared_ptr<metrics> stats);

} // namespace btcstream

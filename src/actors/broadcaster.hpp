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

/// The broadcaster's state.
struct broadcaster_state {
  /// Subscribed connections, iterated for every update; shared with what
  /// ends them when the broadcaster ends, after this state is gone.
  std::shared_ptr<std::vector<connection_actor>> subscribers
      = std::make_shared<std::vector<connection_actor>>();
  /// Position of each subscriber in `subscribers`, for O(1) removal on DOWN.
  std::unordered_map<caf::actor_addr, size_t> index;
  /// Id of the last update forwarded (0 if none): the `upto` of the seam.
  uint64_t last_forwarded = 0;
  /// Time of the last frame or heartbeat sent to everybody.
  caf::actor_clock::time_point last_traffic;
  /// Silence after which a heartbeat goes out.
  caf::timespan heartbeat;
  /// Where the fan-out time is recorded.
  std::shared_ptr<metrics> stats;
  /// The live messages' mailbox elements.
  element_pool pool;

  static inline const char* name = "broadcaster";
};

/// Forwards each stored update to every subscribed connection, forgets dead
/// ones, and sends one `: hb` to all after `heartbeat` without traffic. One
/// timer serves every connection: all of them see the same live traffic.
/// @param heartbeat the silence before a heartbeat (> 0).
/// @param stats the metrics (event_fanout_seconds).
broadcaster_actor::behavior_type
broadcaster(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            caf::timespan heartbeat, std::shared_ptr<metrics> stats);

} // namespace btcstream

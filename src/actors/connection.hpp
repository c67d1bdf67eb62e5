#pragma once

#include "actors/actors.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/query.hpp"
#include "core/seam.hpp"

#include <caf/timespan.hpp>

#include <cstddef>
#include <memory>
#include <optional>

namespace btcstream {

/// A connection's state. `sink` and the first members of `resume` are what
/// a live frame touches: kept first and together (docs/performance.md,
/// "Cold lines").
struct connection_state {
  /// Where frames go: the HTTP session, or a test's recording sink. Weak:
  /// the actor never keeps a socket alive (chat-multi's broadcast), and
  /// frames to a sink its owner dropped go nowhere.
  std::weak_ptr<frame_sink> sink;
  /// The hold/replay/release rule; engaged from spawn on.
  std::optional<seam> resume;
  /// Frames held before the history reply, at most; beyond this the client
  /// is treated as slow (the history reply takes a single round trip, so
  /// only a wedged buffer could reach it).
  size_t max_held = 0;
  /// Whether the client resumes (by id or since): its history is a replay.
  bool resuming = false;
  /// Replay and gap counters, the live-actor gauge.
  std::shared_ptr<metrics> stats;

  static inline const char* name = "connection";
};

/// One SSE client:
///
///   spawn ─subscribe─▶ subscribing ─upto─▶ replaying ─history─▶ live
///                      (live frames held)  (held)                (forwarded
///                                                                 if newer)
///
/// In every phase: a session event, a failed request or the broadcaster's
/// death ends the actor, and its exit closes the sink.
/// @param sink the session's frame sink; the caller keeps it alive for as
/// long as it wants frames (the actor holds it weakly).
/// @param from the client's resume point.
/// @param broadcaster live frames; its `ended` ends this actor.
/// @param buffer history.
/// @param max_held bound on frames held while replaying (>= 1).
/// @param stats the metrics.
/// @param max_age end the stream cleanly after this long (zero: never), so
/// that the client reconnects and resumes, maybe on another node.
connection_actor::behavior_type
connection(connection_actor::stateful_pointer<connection_state> self,
           std::shared_ptr<frame_sink> sink, resume_point from,
           broadcaster_actor broadcaster, buffer_actor buffer, size_t max_held,
           std::shared_ptr<metrics> stats, caf::timespan max_age);

} // namespace btcstream

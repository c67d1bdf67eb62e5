#pragma once

#include "actors/actors.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/query.hpp"

#include <caf/actor_system.hpp>
#include <caf/timespan.hpp>

#include <cstddef>
#include <memory>

namespace btcstream {

/// Spawns one SSE client's actor:
///
///   spawn ─subscribe─▶ subscribing ─upto─▶ replaying ─history─▶ live
///                      (live frames held)  (held)                (forwarded
///                                                                 if newer)
///
/// In every phase: a session event, a failed request, an exit message or
/// the broadcaster's `ended` ends the actor, and its exit closes the sink.
///
/// It is a CAF actor behind the `connection_actor` handle like any other
/// (typed messages, monitors, the actor-level test harness), but written by
/// hand rather than as one of CAF's event-based actors: a delivery to it
/// skips CAF's behaviour dispatch, its four mailbox queues and its response
/// bookkeeping, about half of what a delivery cost on the actor side
/// (docs/performance.md, "What one CAF actor per connection costs"). Its
/// messages all have one priority; it asks two questions, one after the
/// other, and answers none.
///
/// @param sink the session's frame sink; the caller keeps it alive for as
/// long as it wants frames (the actor holds it weakly: it never keeps a
/// socket alive, and frames to a sink its owner dropped go nowhere).
/// @param from the client's resume point.
/// @param broadcaster live frames; its `ended` ends this actor.
/// @param buffer history.
/// @param max_held bound on frames held while replaying (>= 1); beyond it
/// the client is treated as slow (the history reply takes a single round
/// trip, so only a wedged buffer could reach it).
/// @param stats the metrics.
/// @param max_age end the stream cleanly after this long (zero: never), so
/// that the client reconnects and resumes, maybe on another node.
/// Invalid arguments (a missing sink, actor or metrics, `max_held` 0) give
/// an actor that has already ended, and a closed sink.
connection_actor
spawn_connection(caf::actor_system& sys, std::shared_ptr<frame_sink> sink,
                 resume_point from, broadcaster_actor broadcaster,
                 buffer_actor buffer, size_t max_held,
                 std::shared_ptr<metrics> stats, caf::timespan max_age);

} // namespace btcstream

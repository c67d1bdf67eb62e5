#pragma once

#include "core/update.hpp"

#include <cstdint>
#include <vector>

namespace btcstream {

/// Why a session stopped: reported once, as a state change.
enum class session_state {
  closed,  ///< the client went away (or a write failed)
  slow,    ///< unsent bytes exceeded --client-queue
  stalled, ///< no write progress for --stall-timeout
};

const char* to_string(session_state s);

/// Why the actor side ends a stream.
enum class end_cause {
  done,     ///< the session already ended (nothing to report)
  shutdown, ///< the server is shutting down
  error,    ///< the core failed (a request timed out, an actor died)
  max_age,  ///< the stream reached --max-stream-age (the client resumes)
};

/// Where a connection actor writes its frames. Implemented by the HTTP
/// session (a live frame to an idle client written at once, everything else
/// posted onto its strand) and by the tests' recording sink. The actor holds
/// its sink weakly: whoever opens a stream keeps the sink alive for as long
/// as it wants frames (a session keeps itself alive while its socket is
/// open).
struct frame_sink {
  virtual ~frame_sink() = default;
  /// Sends or queues a live frame; counted against --client-queue. Any
  /// thread, one caller at a time.
  /// `stored_ns` (steady clock) times its delivery; 0 for heartbeats.
  /// By reference: a sink copies the pointer only if it keeps the frame.
  virtual void deliver(const frame_ptr& f, int64_t stored_ns) = 0;
  /// Queues replayed frames; paced by write completion, not counted against
  /// --client-queue (a long replay must not make a client "slow").
  virtual void replay(std::vector<frame_ptr> frames) = 0;
  /// Ends the stream after the queued frames are written (or at once if the
  /// client is gone). Idempotent.
  virtual void close(end_cause why) = 0;
};

/// How a session tells its connection actor about state changes.
struct session_events {
  virtual ~session_events() = default;
  /// Called once, from the session's strand, when the session ends.
  virtual void on_state(session_state s) = 0;
};

} // namespace btcstream

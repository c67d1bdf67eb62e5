#pragma once

#include "core/update.hpp"

#include <cstdint>
#include <utility>
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

/// Work that a sink runs where it writes its frames (the HTTP session's
/// strand): a connection actor's turns, so that the frames it delivers reach
/// the socket without another hand-off between threads.
struct sink_job {
  /// Does the work, where the sink writes.
  virtual void run() = 0;
  /// The sink cannot run the work (its session or its I/O threads are
  /// gone): it must run elsewhere.
  virtual void drop() = 0;

protected:
  ~sink_job() = default;
};

/// A `sink_job` as an executor's handler: invoking it runs the job, and
/// destroying it uninvoked (an executor that stopped discards what it still
/// holds) drops the job. So each job posted is run or dropped, once.
class posted_job {
public:
  explicit posted_job(sink_job& j) noexcept : job_(&j) {}
  posted_job(posted_job&& other) noexcept
      : job_(std::exchange(other.job_, nullptr)) {}
  posted_job(const posted_job&) = delete;
  posted_job& operator=(const posted_job&) = delete;
  posted_job& operator=(posted_job&&) = delete;
  ~posted_job() {
    if (job_)
      job_->drop();
  }

  void operator()() {
    if (auto* j = std::exchange(job_, nullptr))
      j->run();
  }

private:
  sink_job* job_;
};

/// Where a connection actor writes its frames. Implemented by the HTTP
/// session (on its strand) and by the tests' recording sinks.
struct frame_sink {
  virtual ~frame_sink() = default;
  /// Queues a live frame; counted against --client-queue. Any thread.
  /// `stored_ns` (steady clock) times its delivery; 0 for heartbeats.
  virtual void deliver(frame_ptr f, int64_t stored_ns) = 0;
  /// Queues replayed frames; paced by write completion, not counted against
  /// --client-queue (a long replay must not make a client "slow").
  virtual void replay(std::vector<frame_ptr> frames) = 0;
  /// Ends the stream after the queued frames are written (or at once if the
  /// client is gone). Idempotent.
  virtual void close(end_cause why) = 0;
  /// Whether `schedule` can run jobs where the frames are written.
  virtual bool runs_jobs() const { return false; }
  /// Runs `j` later where the frames are written, or drops it (at once or
  /// later) when that cannot be; exactly one of the two. Any thread.
  virtual void schedule(sink_job& j) { j.drop(); }
};

/// How a session tells its connection actor about state changes.
struct session_events {
  virtual ~session_events() = default;
  /// Called once, from the session's strand, when the session ends.
  virtual void on_state(session_state s) = 0;
};

} // namespace btcstream

#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>

#include <vector>

namespace btcstream {

/// Makes `cfg`'s actor system schedule its actors with btcstream's work
/// sharing scheduler instead of CAF's `sharing` policy. Same model (one job
/// queue shared by `scheduler.max-threads` workers, idle workers sleep),
/// minus two costs that CAF 0.17 pays on every actor activation and that
/// grow with the number of workers (docs/performance.md):
///
/// - CAF's worker loop records the running actor's id for its logger, even
///   when nothing is logged: a `dynamic_cast` and four updates of one
///   map under one spinlock shared by every worker. Our workers have no
///   logger to tell.
/// - CAF's queue takes its lock (and allocates a list node) once per job
///   put in and once per job taken out. A worker here collects the jobs
///   that its running actor schedules and hands them over in batches of up
///   to 64 (the broadcaster's fan-out to 10,000 connections takes the lock
///   about 160 times, not 10,000), and takes up to 8 jobs at once, but no
///   more than its even share of what is queued, so that no worker idles
///   while another holds work. While it runs one job it prefetches the
///   next one's actor, whose first touch would miss the cache.
/// - CAF's `resume`, after a message, makes one more round over the
///   mailbox's four queues before the actor can wait. A worker here resumes
///   an actor for one message first and, only when more are waiting, again
///   at once with the full budget (the actor keeps its turn).
///
/// The batches are why an actor must not block in a handler (none of ours
/// does): the jobs it scheduled before would wait for the end of its turn
/// (at most 63 of them; every 64th flushes the batch), and so would the up
/// to 7 jobs its worker took with it.
///
/// The clock thread (timeouts, delayed messages) is CAF's.
void use_sharing_scheduler(caf::actor_system_config& cfg);

/// True on a worker thread of btcstream's scheduler.
bool on_scheduler_worker() noexcept;

/// Runs the actors that a fan-out wakes on the worker that made it, right
/// after it, instead of queueing them for any worker: the mailbox elements
/// the fan-out made, the actors it woke and the elements they release then
/// stay on one core, and only the fan-out itself (the broadcaster's shard)
/// went through the shared queue, so that no worker idles while another
/// holds work (docs/performance.md, issue 14).
///
/// Pass it as the execution unit of the fan-out's enqueues: an actor that
/// the enqueue wakes is kept here. Then `run_all()` runs each for one turn,
/// as a worker would have; one with more to do goes back to the queue.
/// Only on a worker thread (`on_scheduler_worker()`), whose unit is `host`.
class run_woken_here final : public caf::execution_unit {
public:
  /// @param expected how many the fan-out may wake (its receivers): room
  /// is made for them at once.
  run_woken_here(caf::execution_unit* host, size_t expected);
  run_woken_here(const run_woken_here&) = delete;
  run_woken_here& operator=(const run_woken_here&) = delete;
  /// Queues what was not run (if the fan-out threw) for any worker.
  ~run_woken_here() override;

  /// Keeps `job` (with the scheduler's reference) to run in `run_all()`.
  void exec_later(caf::resumable* job) override;

  /// Runs every actor kept, in the order they were woken.
  void run_all();

private:
  caf::execution_unit* host_;
  std::vector<caf::resumable*> woken_;
  size_t next_ = 0; // woken_[next_] runs next
};

} // namespace btcstream

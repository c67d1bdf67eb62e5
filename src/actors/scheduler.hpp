#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/execution_unit.hpp>

#include <cstddef>

namespace btcstream {

/// Makes `cfg`'s actor system schedule its actors with btcstream's
/// scheduler instead of CAF's `sharing` policy: `scheduler.max-threads`
/// workers, idle workers sleep. It avoids costs that CAF 0.17 pays on every
/// actor activation and that grow with the number of workers
/// (docs/performance.md):
///
/// - CAF's worker loop records the running actor's id for its logger, even
///   when nothing is logged: a `dynamic_cast` and four updates of one
///   map under one spinlock shared by every worker. Our workers have no
///   logger to tell.
/// - CAF's queue takes its lock (and allocates a list node) once per job
///   put in and once per job taken out. A worker here collects the jobs
///   that its running actor schedules and moves them to its queue in
///   batches of up to 64, and takes up to 8 jobs at once, but no more than
///   its even share of what is queued, so that no worker idles while
///   another holds work. While it runs one job it prefetches the next one's
///   actor, whose first touch would miss the cache.
/// - A job stays on the worker that scheduled it: each worker has its own
///   queue and runs it first, so the lines a message's sender wrote (the
///   mailbox element, the receiver's inbox) are read on the same core.
///   Another worker takes half of a queue (up to a batch) only when it has
///   nothing of its own and the shared queue is empty; a worker that queues
///   more than one job, or gets one from another thread, wakes a sleeping
///   worker for that. Threads that are not workers (I/O, clock) use the
///   shared queue, which each worker reads at least every 8th take.
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

/// Worker `i` of `sys`'s scheduler, if it is btcstream's and has one: an
/// actor enqueued with it as the execution unit runs on that worker (when
/// that worker is busy, an idle one takes it). Null otherwise (CAF's
/// schedulers, the test coordinator).
caf::execution_unit* scheduler_worker(caf::actor_system& sys, size_t i);

} // namespace btcstream

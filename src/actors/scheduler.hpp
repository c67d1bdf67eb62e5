#pragma once

#include <caf/actor_system_config.hpp>

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

} // namespace btcstream

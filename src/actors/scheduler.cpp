#include "actors/scheduler.hpp"

#include "core/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace btcstream {

namespace {

class coordinator;

/// Jobs a worker collects before it moves them to its queue.
constexpr size_t batch_size = 64;

/// Jobs a worker takes from a queue at once (at most its share of what is
/// queued, so the other workers are not left idle).
constexpr size_t take_size = 8;

/// Takes from its own queue between two looks at the shared one, so that
/// jobs from threads that are not workers wait for at most that many.
constexpr unsigned shared_every = 8;

/// How long a worker with queued jobs may show no progress before the
/// others take from its queue although they have their own.
constexpr int64_t stuck_after_ns = 200'000;

/// Takes from its own queue between two hand-overs of a worker's count of
/// deliveries to the fan-out's probe (fanout_probe::handed).
constexpr unsigned publish_every = 32;

class worker;

/// What scheduler_worker hands out: an actor enqueued with it as the
/// execution unit goes straight into its worker's queue, from any thread.
class placement final : public caf::execution_unit {
public:
  placement(caf::actor_system& sys, worker& w)
      : caf::execution_unit(&sys), worker_(w) {}
  void exec_later(caf::resumable* job) override;

private:
  worker& worker_;
};

/// One worker thread. The jobs that a fan-out (a turn that fills a batch)
/// schedules go to its own queue, and it runs its own queue first: a
/// receiver runs on the core that wrote its message (the mailbox element,
/// the receiver's inbox). Another worker takes jobs from that queue only
/// when it has nothing else to do. A turn that schedules fewer jobs hands
/// them to the shared queue.
class worker final : public caf::execution_unit {
public:
  worker(caf::actor_system& sys, coordinator& parent)
      : caf::execution_unit(&sys), parent_(parent), placement_(sys, *this) {
    batch_.reserve(batch_size);
  }

  /// From this worker's own thread (CAF passes the sending actor's unit):
  /// into the batch. From any other thread: as `place`.
  void exec_later(caf::resumable* job) override;

  /// Into this worker's queue at once, waking it (or, while it is busy,
  /// a sleeping worker).
  void place(caf::resumable* job);

  caf::execution_unit* placement_unit() { return &placement_; }

  /// Whether this worker holds queued jobs but has shown no progress (a
  /// take or a batch) since `since_ns`: the kernel has preempted it, or it
  /// runs one long job. Read by the other workers without a lock.
  bool stuck(int64_t since_ns) const {
    return size_.load(std::memory_order_relaxed) > 0
           && progress_ns_.load(std::memory_order_relaxed) < since_ns;
  }

  void start();
  void join() { thread_.join(); }

  /// Moves up to `max` jobs from the front of this worker's queue into
  /// `out`, but no more than a `share_of`-th of what is there (rounded
  /// up), and none from `keep` on. False if it took none.
  bool take(std::vector<caf::resumable*>& out, size_t max, size_t share_of,
            const caf::resumable* keep = nullptr);
  /// Appends to this worker's queue; the caller wakes it if need be.
  /// Returns the queue's length after.
  size_t append(caf::resumable* const* jobs, size_t n);
  /// Jobs in this worker's queue that another worker may take.
  size_t queued(const caf::resumable* keep);
  /// Moves everything out of the queue and the batch (at shutdown).
  void drain(std::vector<caf::resumable*>& out);

  /// Guarded by the coordinator's sleep lock.
  bool sleeping = false;
  std::condition_variable wake;

private:
  void run();
  /// Moves the batch out: mid-turn (full) or at the end of a turn.
  void flush(bool end_of_turn);
  bool next(std::vector<caf::resumable*>& out);
  /// Runs one job; false when it tells this worker to stop.
  bool run_one(caf::resumable* job);

  coordinator& parent_;
  placement placement_;
  std::mutex mtx_;
  std::deque<caf::resumable*> queue_; // guarded by mtx_
  // For `stuck`: lines of their own, written by this worker.
  alignas(64) std::atomic<size_t> size_{0}; // queue_.size(), under mtx_
  alignas(64) std::atomic<int64_t> progress_ns_{0};
  std::vector<caf::resumable*> batch_;
  std::vector<caf::resumable*> taken_;
  unsigned takes_ = 0;
  // The running turn has filled a batch: it is a fan-out.
  bool fanning_out_ = false;
  std::thread thread_;
};

thread_local worker* current_worker = nullptr;

/// Starts loading the actor behind `job` into the cache, without waiting
/// (a prefetch never faults). In a fan-out each actor last ran 10,000
/// actors ago, so its first touch misses the cache: perf put nearly all of
/// the worker loop's own time on that one load. Fetching the next job's
/// lines while the current one runs overlaps the misses with work. The
/// window fits a connection actor, nearly every job of a fan-out
/// (connection.cpp): CAF 0.17 puts its 64-byte control block (the
/// reference count that the end of the turn releases) before the actor,
/// whose `resumable` base comes after its 120-byte `monitorable_actor`
/// base and is followed by the inbox, the sink and the seam; the whole is
/// under 8 lines. (The window before, 20 lines from 224 bytes before,
/// fitted CAF's event-based actors; `fanout_actors` measured no difference
/// between the two for the connection, and this one asks for less.)
void prefetch_actor(const caf::resumable* job) {
  auto at = reinterpret_cast<std::uintptr_t>(job) - 184;
  for (int line = 0; line < 8; ++line, at += 64)
    __builtin_prefetch(reinterpret_cast<const void*>(at), 1);
}

/// Tells a worker to return: one per worker, at shutdown.
class stop_token final : public caf::resumable {
public:
  resume_result resume(caf::execution_unit*, size_t) override {
    return shutdown_execution_unit;
  }
  // Lives as long as the coordinator: not reference counted.
  void intrusive_ptr_add_ref_impl() override {}
  void intrusive_ptr_release_impl() override {}
};

void name_thread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

class coordinator final : public caf::scheduler::abstract_coordinator {
public:
  explicit coordinator(caf::actor_system& sys) : abstract_coordinator(sys) {}

  /// From a thread that is not a worker (I/O, clock): the shared queue.
  void enqueue(caf::resumable* job) override { push_shared(&job, 1); }

  /// Appends to the shared queue and wakes as many sleeping workers.
  void push_shared(caf::resumable* const* jobs, size_t n) {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      shared_.insert(shared_.end(), jobs, jobs + n);
      shared_size_.store(shared_.size(), std::memory_order_relaxed);
    }
    for (size_t i = 0; i < n && sleepers_.load() > 0; ++i)
      wake_any();
  }

  caf::detail::thread_safe_actor_clock& clock() noexcept override {
    return clock_;
  }

  worker* at(size_t i) {
    return i < workers_.size() ? workers_[i].get() : nullptr;
  }

  /// The next jobs for worker `self`, into `out` (empty): from its own
  /// queue, else from the shared one, else half of the longest other
  /// queue's. Sleeps while there are none. With `look_around_at` (now, in
  /// steady nanoseconds; 0: not this time), from the shared queue or a
  /// stuck worker's first.
  void next(worker& self, std::vector<caf::resumable*>& out,
            int64_t look_around_at);

  /// After the caller put work into `w`'s queue: wakes `w` if it sleeps,
  /// else another sleeping worker, if any, which may take it while `w` is
  /// busy.
  void wake(worker& w) { wake_first(&w); }

  /// Wakes one sleeping worker, if any: there is work it may take.
  void wake_any() { wake_first(nullptr); }

protected:
  void start() override {
    for (size_t i = 0; i < num_workers(); ++i)
      workers_.push_back(std::make_unique<worker>(system(), *this));
    for (auto& w : workers_)
      w->start();
    timer_ = std::thread{[this] {
      name_thread("caf.clock");
      system().thread_started();
      clock_.run_dispatch_loop();
      system().thread_terminates();
    }};
    abstract_coordinator::start();
  }

  // As CAF's coordinator: workers first, then the utility actors, then the
  // jobs nobody will run, then the clock.
  void stop() override {
    caf::resumable* token = &token_;
    for (auto& w : workers_) {
      w->append(&token, 1);
      wake(*w);
    }
    for (auto& w : workers_)
      w->join();
    stop_actors();
    std::vector<caf::resumable*> left;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      left.assign(shared_.begin(), shared_.end());
      shared_.clear();
      shared_size_.store(0, std::memory_order_relaxed);
    }
    for (auto& w : workers_)
      w->drain(left);
    for (auto* job : left)
      if (job != token)
        cleanup_and_release(job);
    clock_.cancel_dispatch_loop();
    timer_.join();
  }

private:
  bool take_shared(std::vector<caf::resumable*>& out) {
    // Looked at without the lock, which every worker would otherwise write
    // at every look; one that misses a job here finds it before it sleeps.
    if (shared_size_.load(std::memory_order_relaxed) == 0)
      return false;
    std::lock_guard<std::mutex> guard{mtx_};
    return take_shared_locked(out);
  }

  bool take_shared_locked(std::vector<caf::resumable*>& out) {
    if (shared_.empty())
      return false;
    auto share = (shared_.size() + num_workers() - 1) / num_workers();
    auto n = static_cast<ptrdiff_t>(std::min(take_size, share));
    out.assign(shared_.begin(), shared_.begin() + n);
    shared_.erase(shared_.begin(), shared_.begin() + n);
    shared_size_.store(shared_.size(), std::memory_order_relaxed);
    return true;
  }

  /// Half (rounded up, up to a batch) of the queue of a worker that has
  /// shown no progress for `stuck_after`: while the kernel runs something
  /// else on its core, its jobs would otherwise wait for it, although this
  /// worker could run them (compare.py burst, with stalled clients: p99
  /// 40-67 ms against 11-18 ms on one shared queue).
  bool steal_from_stuck(worker& self, std::vector<caf::resumable*>& out,
                        int64_t now) {
    for (auto& w : workers_)
      if (w.get() != &self && w->stuck(now - stuck_after_ns)
          && w->take(out, batch_size, 2, &token_))
        return true;
    return false;
  }

  /// Half (rounded up, up to a batch) of the longest other queue, never
  /// a stop token: the thief would stop in its owner's place.
  bool steal(worker& self, std::vector<caf::resumable*>& out) {
    worker* victim = nullptr;
    size_t most = 0;
    for (auto& w : workers_)
      if (w.get() != &self) {
        auto n = w->queued(&token_);
        if (n > most) {
          most = n;
          victim = w.get();
        }
      }
    return victim && victim->take(out, std::min(most, batch_size), 2, &token_);
  }

  /// Wakes `first` if it sleeps, else the first sleeping worker.
  void wake_first(worker* first) {
    if (sleepers_.load() == 0)
      return;
    std::lock_guard<std::mutex> guard{mtx_};
    if (!first || !first->sleeping)
      for (auto& w : workers_)
        if (w->sleeping) {
          first = w.get();
          break;
        }
    if (first && first->sleeping) {
      first->sleeping = false;
      first->wake.notify_one();
    }
  }

  stop_token token_;
  // Guards the shared queue and every worker's `sleeping`; a worker waits
  // on its own condition variable with it.
  std::mutex mtx_;
  std::deque<caf::resumable*> shared_; // guarded by mtx_
  // Read at every take and flush, written rarely: on lines of their own,
  // apart from the lock.
  alignas(64) std::atomic<size_t> shared_size_{0}; // written under mtx_
  alignas(64) std::atomic<size_t> sleepers_{0};
  std::vector<std::unique_ptr<worker>> workers_;
  caf::detail::thread_safe_actor_clock clock_;
  std::thread timer_;
};

void coordinator::next(worker& self, std::vector<caf::resumable*>& out,
                       int64_t look_around_at) {
  for (;;) {
    if (look_around_at != 0
        && (take_shared(out) || steal_from_stuck(self, out, look_around_at)))
      return;
    if (self.take(out, take_size, num_workers()))
      return;
    publish_handed_counts();
    if (take_shared(out) || steal(self, out))
      return;
    // Nothing anywhere: sleep. Counted as a sleeper before it looks again,
    // under the locks of the queues it looks at, so that whoever appends
    // to them after that look sees it asleep and wakes it (wake).
    std::unique_lock<std::mutex> guard{mtx_};
    self.sleeping = true;
    ++sleepers_;
    bool work = !shared_.empty() || self.queued(nullptr) > 0;
    for (auto& w : workers_)
      work = work || (w.get() != &self && w->queued(&token_) > 0);
    if (!work)
      self.wake.wait(guard, [&] {
        return !self.sleeping;
      });
    self.sleeping = false;
    --sleepers_;
    if (take_shared_locked(out))
      return;
    look_around_at = 0;
  }
}

void placement::exec_later(caf::resumable* job) {
  worker_.place(job);
}

void worker::place(caf::resumable* job) {
  append(&job, 1);
  parent_.wake(*this);
}

void worker::exec_later(caf::resumable* job) {
  if (current_worker != this) {
    place(job);
    return;
  }
  batch_.push_back(job);
  if (batch_.size() == batch_size)
    flush(false);
}

void worker::flush(bool end_of_turn) {
  if (batch_.empty()) {
    fanning_out_ = fanning_out_ && !end_of_turn;
    return;
  }
  if (end_of_turn && !fanning_out_) {
    // A turn that scheduled a few jobs (the buffer's update to the
    // broadcaster, a reply): the shared queue, for whichever worker comes
    // first. On this worker's queue they would wait whenever the kernel
    // preempts it, and with them the next fan-out (compare.py burst).
    parent_.push_shared(batch_.data(), batch_.size());
    batch_.clear();
    return;
  }
  // A fan-out: its receivers stay on this worker.
  fanning_out_ = !end_of_turn;
  if (!end_of_turn)
    progress_ns_.store(steady_now_ns(), std::memory_order_relaxed);
  auto queued = append(batch_.data(), batch_.size());
  batch_.clear();
  // More than this worker takes at once: another may help.
  if (queued > 1)
    parent_.wake_any();
}

size_t worker::append(caf::resumable* const* jobs, size_t n) {
  std::lock_guard<std::mutex> guard{mtx_};
  queue_.insert(queue_.end(), jobs, jobs + n);
  size_.store(queue_.size(), std::memory_order_relaxed);
  return queue_.size();
}

size_t worker::queued(const caf::resumable* keep) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto n = queue_.size();
  return n > 0 && queue_.back() == keep ? n - 1 : n;
}

bool worker::take(std::vector<caf::resumable*>& out, size_t max,
                  size_t share_of, const caf::resumable* keep) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto n = std::min(max, (queue_.size() + share_of - 1) / share_of);
  out.clear();
  for (auto i = queue_.begin(); out.size() < n && *i != keep; ++i)
    out.push_back(*i);
  queue_.erase(queue_.begin(),
               queue_.begin() + static_cast<ptrdiff_t>(out.size()));
  size_.store(queue_.size(), std::memory_order_relaxed);
  return !out.empty();
}

void worker::drain(std::vector<caf::resumable*>& out) {
  std::lock_guard<std::mutex> guard{mtx_};
  out.insert(out.end(), queue_.begin(), queue_.end());
  queue_.clear();
  size_.store(0, std::memory_order_relaxed);
  out.insert(out.end(), batch_.begin(), batch_.end());
  batch_.clear();
}

void worker::start() {
  thread_ = std::thread{[this] {
    name_thread("caf.worker");
    system().thread_started();
    run();
    system().thread_terminates();
  }};
}

void worker::run() {
  current_worker = this;
  batch_handed_counts();
  taken_.reserve(batch_size);
  for (;;) {
    // A fan-out is timed when its last count arrives: each worker hands
    // its count over before it looks anywhere but its own queue (next),
    // and at least every `publish_every` takes. Not at every take: the
    // count's line would cross between the cores every 8 deliveries.
    if (++takes_ % publish_every == 0)
      publish_handed_counts();
    auto now = steady_now_ns();
    progress_ns_.store(now, std::memory_order_relaxed);
    parent_.next(*this, taken_, takes_ % shared_every == 0 ? now : 0);
    for (size_t i = 0; i < taken_.size(); ++i) {
      if (i + 1 < taken_.size())
        prefetch_actor(taken_[i + 1]);
      if (!run_one(taken_[i])) {
        // The rest go back, for another worker or the final cleanup.
        append(taken_.data() + i + 1, taken_.size() - i - 1);
        flush(true);
        publish_handed_counts();
        current_worker = nullptr;
        return;
      }
    }
  }
}

bool worker::run_one(caf::resumable* job) {
  // One message first: nearly every job is a connection actor with one
  // live frame, and after a message CAF 0.17's `resume` makes another
  // round over the mailbox's four queues before it can block (~180
  // instructions per delivery, docs/performance.md). An actor with more
  // waiting is resumed again at once, with the full budget, so it keeps
  // its turn instead of going to the back of the queue.
  auto result = job->resume(this, 1);
  if (result == caf::resumable::resume_later)
    result = job->resume(this, parent_.max_throughput());
  // What the job scheduled goes out before this worker waits again.
  flush(true);
  switch (result) {
  case caf::resumable::resume_later:
    // Keeps its reference: back to the end of this worker's queue.
    append(&job, 1);
    break;
  case caf::resumable::done:
  case caf::resumable::awaiting_message:
    intrusive_ptr_release(job);
    break;
  case caf::resumable::shutdown_execution_unit:
    return false;
  }
  return true;
}

} // namespace

caf::execution_unit* scheduler_worker(caf::actor_system& sys, size_t i) {
  auto* c = dynamic_cast<coordinator*>(&sys.scheduler());
  auto* w = c ? c->at(i) : nullptr;
  return w ? w->placement_unit() : nullptr;
}

void use_sharing_scheduler(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
      [](caf::actor_system& sys) -> caf::actor_system::module* {
        return new coordinator(sys);
      });
}

} // namespace btcstream

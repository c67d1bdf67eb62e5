#include "actors/scheduler.hpp"

#include "core/metrics.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <pthread.h>

#include <algorithm>
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

/// Jobs a worker collects before it hands them to the shared queue.
constexpr size_t batch_size = 64;

/// Jobs a worker takes from the shared queue at once (at most its share of
/// what is queued, so the other workers are not left idle).
constexpr size_t take_size = 8;

/// One worker thread: runs jobs from the shared queue; the jobs its running
/// actor schedules go into its batch first.
class worker final : public caf::execution_unit {
public:
  worker(caf::actor_system& sys, coordinator& parent)
      : caf::execution_unit(&sys), parent_(parent) {
    batch_.reserve(batch_size);
  }

  /// CAF calls this with the execution unit of the actor that sends, i.e.
  /// from this worker's own thread; any other thread goes straight to the
  /// shared queue.
  void exec_later(caf::resumable* job) override;

  void start();
  void join() { thread_.join(); }

private:
  void run();
  void flush();
  /// Runs one job; false when it tells this worker to stop.
  bool run_one(caf::resumable* job);

  coordinator& parent_;
  std::vector<caf::resumable*> batch_;
  std::vector<caf::resumable*> taken_;
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
  // Lives as long as the coordinator's stop(): not reference counted.
  void intrusive_ptr_add_ref_impl() override {}
  void intrusive_ptr_release_impl() override {}
};

/// One turn of `job`, as a worker gives it. One message first: nearly
/// every job is a connection actor with one live frame, and after a
/// message CAF 0.17's `resume` makes another round over the mailbox's four
/// queues before it can block (~180 instructions per delivery,
/// docs/performance.md). An actor with more waiting is resumed again at
/// once, with the full budget, so it keeps its turn instead of going to
/// the back of the queue.
caf::resumable::resume_result resume_turn(caf::resumable* job,
                                          caf::execution_unit* host,
                                          size_t max_throughput) {
  auto result = job->resume(host, 1);
  if (result == caf::resumable::resume_later)
    result = job->resume(host, max_throughput);
  return result;
}

void name_thread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

class coordinator final : public caf::scheduler::abstract_coordinator {
public:
  explicit coordinator(caf::actor_system& sys) : abstract_coordinator(sys) {}

  void enqueue(caf::resumable* job) override { push(&job, 1); }

  caf::detail::thread_safe_actor_clock& clock() noexcept override {
    return clock_;
  }

  /// Appends jobs to the shared queue and wakes as many sleeping workers.
  void push(caf::resumable* const* jobs, size_t n) {
    size_t wake = 0;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      queue_.insert(queue_.end(), jobs, jobs + n);
      wake = std::min(n, sleeping_);
    }
    if (wake == 1)
      cv_.notify_one();
    else if (wake > 1)
      cv_.notify_all();
  }

  /// Moves the next jobs into `out` (empty): up to `max`, and no more than
  /// an even share among the workers of what is queued. Sleeps while there
  /// is none.
  void pop(std::vector<caf::resumable*>& out, size_t max) {
    std::unique_lock<std::mutex> guard{mtx_};
    while (queue_.empty()) {
      ++sleeping_;
      cv_.wait(guard);
      --sleeping_;
    }
    auto share = (queue_.size() + num_workers() - 1) / num_workers();
    auto n = std::min(max, share);
    out.assign(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(n));
  }

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
    stop_token token;
    std::vector<caf::resumable*> tokens(workers_.size(), &token);
    push(tokens.data(), tokens.size());
    for (auto& w : workers_)
      w->join();
    stop_actors();
    std::deque<caf::resumable*> left;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      left.swap(queue_);
    }
    for (auto* job : left)
      if (job != &token)
        cleanup_and_release(job);
    clock_.cancel_dispatch_loop();
    timer_.join();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<caf::resumable*> queue_; // guarded by mtx_
  size_t sleeping_ = 0;               // guarded by mtx_
  std::vector<std::unique_ptr<worker>> workers_;
  caf::detail::thread_safe_actor_clock clock_;
  std::thread timer_;
};

void worker::exec_later(caf::resumable* job) {
  if (current_worker != this) {
    parent_.push(&job, 1);
    return;
  }
  batch_.push_back(job);
  if (batch_.size() == batch_size)
    flush();
}

void worker::flush() {
  if (batch_.empty())
    return;
  parent_.push(batch_.data(), batch_.size());
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
  taken_.reserve(take_size);
  for (;;) {
    // Before it may wait: a fan-out is timed when its last count arrives.
    publish_handed_counts();
    parent_.pop(taken_, take_size);
    for (size_t i = 0; i < taken_.size(); ++i) {
      if (i + 1 < taken_.size())
        prefetch_actor(taken_[i + 1]);
      if (!run_one(taken_[i])) {
        // The rest go back for the other workers (or the final cleanup).
        parent_.push(taken_.data() + i + 1, taken_.size() - i - 1);
        publish_handed_counts();
        current_worker = nullptr;
        return;
      }
    }
  }
}

bool worker::run_one(caf::resumable* job) {
  auto result = resume_turn(job, this, parent_.max_throughput());
  // What the job scheduled goes out before this worker waits again.
  flush();
  switch (result) {
  case caf::resumable::resume_later:
    // Keeps its reference: back to the end of the queue.
    parent_.push(&job, 1);
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

bool on_scheduler_worker() noexcept {
  return current_worker != nullptr;
}

run_woken_here::run_woken_here(caf::execution_unit* host, size_t expected)
    : caf::execution_unit(&host->system()), host_(host) {
  woken_.reserve(expected);
}

run_woken_here::~run_woken_here() {
  // Not run (the fan-out threw): to the queue, for any worker.
  for (; next_ < woken_.size(); ++next_)
    host_->exec_later(woken_[next_]);
}

void run_woken_here::exec_later(caf::resumable* job) {
  woken_.push_back(job);
}

void run_woken_here::run_all() {
  auto max = host_->system().scheduler().max_throughput();
  while (next_ < woken_.size()) {
    auto* job = woken_[next_++];
    if (next_ < woken_.size())
      prefetch_actor(woken_[next_]);
    switch (resume_turn(job, host_, max)) {
    case caf::resumable::resume_later:
      // Keeps its reference: to the queue, for any worker.
      host_->exec_later(job);
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
    case caf::resumable::shutdown_execution_unit: // only the workers' tokens
      intrusive_ptr_release(job);
      break;
    }
  }
  woken_.clear();
  next_ = 0;
}

void use_sharing_scheduler(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
      [](caf::actor_system& sys) -> caf::actor_system::module* {
        return new coordinator(sys);
      });
}

} // namespace btcstream

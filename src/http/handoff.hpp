#pragma once

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <memory>

namespace btcstream {

/// Work handed to an I/O thread by other threads (connection actors): one
/// `run` on that thread, in the order each producer pushed.
struct handoff_task {
  virtual ~handoff_task() = default;
  /// Must not throw: the tasks after it would be lost.
  virtual void run() = 0;
  handoff_task* next = nullptr; // the handoff's list; owned by it
};

/// The hand-off from the actor threads to one `io_context`, in batches: any
/// thread pushes tasks onto a lock-free list, and only the push that finds
/// the list empty posts a drain, which runs every task pushed until then.
/// When 10,000 connection actors each hand over one frame, their I/O thread
/// gets a few posts (one per batch) instead of 10,000, and wakes up once.
///
/// An Asio service: one per `io_context`, found with
/// `boost::asio::use_service<handoff>(ioc)`. Meant for an `io_context` run
/// by one thread, whose handlers then need no strand. Tasks still pending
/// when the context is destroyed are destroyed without running.
class handoff : public boost::asio::io_context::service {
public:
  static inline boost::asio::execution_context::id id;

  explicit handoff(boost::asio::io_context& ioc);
  ~handoff() override;

  handoff(const handoff&) = delete;
  handoff& operator=(const handoff&) = delete;

  /// Queues `t` to run on the context's thread. Thread-safe, lock-free.
  void push(std::unique_ptr<handoff_task> t);

  /// Queues the callable `f` (run once, must not throw).
  template<class F>
  void post(F f) {
    struct task final : handoff_task {
      explicit task(F&& fn) : fn(std::move(fn)) {}
      void run() override { fn(); }
      F fn;
    };
    push(std::make_unique<task>(std::move(f)));
  }

  /// Drains run so far (posts to the context); for tests and benchmarks.
  size_t drains() const { return drains_.load(std::memory_order_relaxed); }

private:
  void shutdown() override;
  void drain();
  void destroy_pending();

  std::atomic<handoff_task*> head_{nullptr}; // newest first
  std::atomic<size_t> drains_{0};
};

} // namespace btcstream

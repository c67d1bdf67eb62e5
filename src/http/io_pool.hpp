#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace btcstream {

/// The I/O threads: one `io_context` per thread, each run by that thread
/// alone, so a connection's handlers never move between cores and need no
/// strand, and no queue or lock is shared by all I/O threads. New
/// connections are spread over the contexts in turn; everything else (the
/// listeners, the upstream client, Redis, signals) runs on the first.
class io_pool {
public:
  /// @param threads the number of contexts and threads (>= 1).
  explicit io_pool(size_t threads);
  ~io_pool();

  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  /// The first context: listeners, clients, timers, signals.
  boost::asio::io_context& main() { return *contexts_.front(); }

  /// The context of the next new connection (round robin). Thread-safe.
  boost::asio::io_context& next();

  /// The number of contexts.
  size_t size() const { return contexts_.size(); }

  /// The context at `i` (< size()).
  boost::asio::io_context& at(size_t i) { return *contexts_.at(i); }

  /// Starts one thread per context.
  void start();

  /// Stops every context at once.
  void stop();

  /// Waits for the threads; after stop().
  void join();

private:
  using guard = boost::asio::executor_work_guard<
      boost::asio::io_context::executor_type>;

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<guard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> turn_{0};
};

} // namespace btcstream

#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <thread>

namespace btcstream {

/// Calls `expire` on a thread of its own unless disarmed by `deadline`: the
/// last resort of a shutdown whose waits are each bounded but whose parts
/// (an actor that never ends) may not be.
class watchdog {
public:
  watchdog(std::chrono::steady_clock::time_point deadline,
           std::function<void()> expire);
  /// Disarms, then waits for the thread.
  ~watchdog();

  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// From now on `expire` is not called (unless it already runs).
  void disarm();

private:
  std::promise<void> disarmed_;
  bool armed_ = true;
  std::thread thread_;
};

} // namespace btcstream

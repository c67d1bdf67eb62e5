#include "core/watchdog.hpp"

namespace btcstream {

watchdog::watchdog(std::chrono::steady_clock::time_point deadline,
                   std::function<void()> expire) {
  thread_ = std::thread{[deadline, expire = std::move(expire),
                         disarmed = disarmed_.get_future()] {
    if (disarmed.wait_until(deadline) == std::future_status::timeout)
      expire();
  }};
}

watchdog::~watchdog() {
  disarm();
  thread_.join();
}

void watchdog::disarm() {
  if (!armed_)
    return;
  armed_ = false;
  disarmed_.set_value();
}

} // namespace btcstream

#include "core/watchdog.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>

using namespace btcstream;
using namespace std::chrono_literals;

TEST_CASE("a watchdog not disarmed by its deadline calls expire once") {
  std::promise<void> called;
  auto fired = called.get_future();
  std::atomic<int> calls{0};
  {
    watchdog dog{std::chrono::steady_clock::now() + 1ms, [&] {
                   if (++calls == 1)
                     called.set_value();
                 }};
    // Not a timing claim: the bound only keeps a broken watchdog from
    // hanging the suite.
    REQUIRE(fired.wait_for(30s) == std::future_status::ready);
  }
  CHECK(calls == 1);
}

TEST_CASE("a disarmed watchdog never calls expire") {
  std::atomic<int> calls{0};
  auto started = std::chrono::steady_clock::now();
  {
    watchdog dog{started + 1h, [&] {
                   ++calls;
                 }};
    dog.disarm();
    dog.disarm(); // twice is harmless
  }
  // Reached at once: a disarm that did not wake the thread would hold the
  // destructor for the hour (and the suite past its timeout).
  CHECK(calls == 0);
}

TEST_CASE("a watchdog that goes out of scope is disarmed") {
  std::atomic<int> calls{0};
  {
    watchdog dog{std::chrono::steady_clock::now() + 1h, [&] {
                   ++calls;
                 }};
  }
  CHECK(calls == 0);
}

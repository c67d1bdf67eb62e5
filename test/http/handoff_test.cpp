// The hand-off to an I/O thread: every task runs once, on the context's
// thread, in each producer's order; one drain serves a whole batch; tasks
// still pending when the context goes are destroyed without running.

#include "http/handoff.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <doctest/doctest.h>

#include <memory>
#include <thread>
#include <utility>
#include <vector>

using namespace btcstream;
namespace asio = boost::asio;

TEST_CASE("a batch pushed before the thread runs is one drain, in order") {
  asio::io_context ioc{1};
  auto& h = asio::use_service<handoff>(ioc);
  std::vector<int> seen;
  for (int i = 0; i < 1000; ++i)
    h.post([&seen, i] {
      seen.push_back(i);
    });
  CHECK(seen.empty());
  ioc.run();
  REQUIRE(seen.size() == 1000);
  for (int i = 0; i < 1000; ++i)
    CHECK(seen[static_cast<size_t>(i)] == i);
  CHECK(h.drains() == 1);
}

TEST_CASE("a push after a drain posts the next drain") {
  asio::io_context ioc{1};
  auto& h = asio::use_service<handoff>(ioc);
  int runs = 0;
  h.post([&] {
    ++runs;
    // Pushed while the first drain runs: it took the list already.
    h.post([&] {
      ++runs;
    });
  });
  ioc.run();
  CHECK(runs == 2);
  CHECK(h.drains() == 2);
}

TEST_CASE("tasks from many threads run once each, in each producer's order, "
          "on the context's thread") {
  constexpr int producers = 4;
  constexpr int per_producer = 20000;
  asio::io_context ioc{1};
  auto& h = asio::use_service<handoff>(ioc);
  auto guard = asio::make_work_guard(ioc);
  std::thread::id io_thread;
  std::thread runner{[&] {
    io_thread = std::this_thread::get_id();
    ioc.run();
  }};
  // Touched only on the context's thread.
  std::vector<int> next(producers, 0);
  int out_of_order = 0;
  int wrong_thread = 0;
  int total = 0;
  std::vector<std::thread> ps;
  for (int p = 0; p < producers; ++p)
    ps.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i)
        h.post([&, p, i] {
          if (std::this_thread::get_id() != io_thread)
            ++wrong_thread;
          if (next[static_cast<size_t>(p)] != i)
            ++out_of_order;
          next[static_cast<size_t>(p)] = i + 1;
          ++total;
        });
    });
  for (auto& t : ps)
    t.join();
  // Runs after every task pushed above: a post from this thread is behind
  // the drain that a push of the producers posted (or a drain already ran).
  h.post([&] {
    guard.reset();
  });
  runner.join();
  CHECK(total == producers * per_producer);
  CHECK(out_of_order == 0);
  CHECK(wrong_thread == 0);
  for (auto n : next)
    CHECK(n == per_producer);
  // Batches: far fewer drains than tasks (each drain takes all it finds).
  CHECK(h.drains() >= 1);
  MESSAGE("drains for " << producers * per_producer + 1
                        << " tasks: " << h.drains());
}

TEST_CASE("tasks pending when the context is destroyed never run and are "
          "freed") {
  auto owned = std::make_shared<int>(7);
  int runs = 0;
  {
    asio::io_context ioc{1};
    auto& h = asio::use_service<handoff>(ioc);
    h.post([owned, &runs] {
      ++runs;
    });
    CHECK(owned.use_count() == 2);
  }
  CHECK(runs == 0);
  CHECK(owned.use_count() == 1);
}

// The I/O threads: one context per thread, each run by its own thread; new
// connections spread over them in turn.

#include "http/io_pool.hpp"

#include <boost/asio/post.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace btcstream;
namespace asio = boost::asio;

TEST_CASE("next() takes the contexts in turn, the first is main()") {
  io_pool pool{3};
  REQUIRE(pool.size() == 3);
  CHECK(&pool.next() == &pool.main());
  CHECK(&pool.next() == &pool.at(1));
  CHECK(&pool.next() == &pool.at(2));
  CHECK(&pool.next() == &pool.main());
}

TEST_CASE("each context runs on a thread of its own, until stop()") {
  io_pool pool{3};
  pool.start();
  std::vector<std::thread::id> ids;
  for (size_t i = 0; i < pool.size(); ++i) {
    std::promise<std::thread::id> p;
    auto f = p.get_future();
    asio::post(pool.at(i), [&p] {
      p.set_value(std::this_thread::get_id());
    });
    ids.push_back(f.get());
  }
  std::set<std::thread::id> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == 3);
  CHECK(distinct.count(std::this_thread::get_id()) == 0);
  // Idle contexts keep running (work guards) until stop().
  std::promise<void> later;
  asio::post(pool.at(2), [&later] {
    later.set_value();
  });
  later.get_future().get();
  pool.stop();
  pool.join();
  CHECK(pool.main().stopped());
}

TEST_CASE("an io_pool needs a thread") {
  CHECK_THROWS_AS(io_pool{0}, std::invalid_argument);
}

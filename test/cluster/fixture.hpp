#pragma once

// Shared by the cluster tests: a real redis-server, an io_context on its own
// thread, and helpers that wait for one callback with a generous bound (these
// are I/O tests, not timing tests).

#include "cluster/redis_connection.hpp"
#include "cluster/redis_log.hpp"
#include "core/redis_url.hpp"
#include "redis_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace btcstream::test {

/// How long any single callback may take before the test fails.
constexpr auto patience = std::chrono::seconds{30};

/// Calls `start(cb)` and waits for `cb`'s one argument. A second call of
/// `cb` throws (std::future_error) on the Asio thread and ends the run.
template<class R, class F>
R await(F&& start) {
  auto p = std::make_shared<std::promise<R>>();
  auto f = p->get_future();
  start([p](R r) {
    p->set_value(std::move(r));
  });
  REQUIRE(f.wait_for(patience) == std::future_status::ready);
  return f.get();
}

/// A redis-server plus an io_context thread; `log` (for lease, append and
/// non-blocking reads), `reader` (for blocking reads, on its own
/// connection, as the wiring must do) and `admin` (raw commands).
struct cluster_fixture {
  explicit cluster_fixture(std::string password = {}, int db = 0)
      : server(std::move(password)) {
    thread = std::thread{[this] {
      ioc.run();
    }};
    log = make_log(server.url(db));
    reader = make_log(server.url(db));
    admin = connect(server.url(db));
  }

  ~cluster_fixture() {
    log->stop();
    reader->stop();
    admin->stop();
    guard.reset();
    thread.join();
  }

  /// A connection to `url` (which must parse).
  std::shared_ptr<redis_connection> connect(const std::string& url) {
    auto ep = parse_redis_url(url);
    REQUIRE(ep);
    return redis_connection::create(ioc, *ep);
  }

  /// A redis_log with prefix "t" over a new connection to `url`.
  std::unique_ptr<redis_log> make_log(const std::string& url) {
    return std::make_unique<redis_log>(connect(url), "t");
  }

  /// Runs one command on `admin` and returns its reply (failing the test on
  /// a failure).
  redis_value cmd(std::vector<std::string> args) {
    auto r = await<redis_result>([&](auto cb) {
      admin->command(std::move(args), std::chrono::seconds{5}, cb);
    });
    REQUIRE_MESSAGE(r.failure == log_failure::none, r.error);
    return r.value;
  }

  /// lease() and wait.
  lease_reply lease(const std::string& node, uint64_t token,
                    std::chrono::milliseconds ttl = std::chrono::seconds{10}) {
    return await<lease_reply>([&](auto cb) {
      log->lease(node, token, ttl, cb);
    });
  }

  /// release() and wait.
  release_reply release(const std::string& node, uint64_t token) {
    return await<release_reply>([&](auto cb) {
      log->release(node, token, cb);
    });
  }

  /// append() and wait; max_len 1000 and a ttl of a day unless given.
  append_reply append(const std::string& node, uint64_t token, int64_t ts,
                      double price, uint64_t floor = 0, uint64_t max_len = 1000,
                      std::chrono::milliseconds ttl = std::chrono::hours{24}) {
    update u{0, ts, price};
    return await<append_reply>([&](auto cb) {
      log->append(node, token, u, floor, max_len, ttl, cb);
    });
  }

  /// read() on `reader` and wait.
  read_reply read(uint64_t after, size_t count = 100,
                  std::optional<std::chrono::milliseconds> block = {}) {
    return await<read_reply>([&](auto cb) {
      reader->read(after, count, block, cb);
    });
  }

  redis_server server;
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard
      = boost::asio::make_work_guard(ioc);
  std::thread thread;
  std::unique_ptr<redis_log> log;
  std::unique_ptr<redis_log> reader;
  std::shared_ptr<redis_connection> admin;
};

} // namespace btcstream::test

#include "http/io_pool.hpp"

#include <stdexcept>

namespace btcstream {

namespace asio = boost::asio;

io_pool::io_pool(size_t threads) {
  if (threads == 0)
    throw std::invalid_argument("io_pool needs at least one thread");
  for (size_t i = 0; i < threads; ++i) {
    // Concurrency hint 1: one thread runs the context, which lets Asio keep
    // handlers posted from that thread in a private, unlocked queue.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.push_back(asio::make_work_guard(*contexts_.back()));
  }
}

io_pool::~io_pool() {
  stop();
  join();
}

asio::io_context& io_pool::next() {
  auto i = turn_.fetch_add(1, std::memory_order_relaxed);
  return *contexts_[i % contexts_.size()];
}

void io_pool::start() {
  for (auto& c : contexts_)
    threads_.emplace_back([&ctx = *c] {
      ctx.run();
    });
}

void io_pool::stop() {
  for (auto& c : contexts_)
    c->stop();
}

void io_pool::join() {
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
  threads_.clear();
}

} // namespace btcstream

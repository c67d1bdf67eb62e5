#include "http/handoff.hpp"

#include <boost/asio/post.hpp>

namespace btcstream {

namespace asio = boost::asio;

namespace {

/// The list from newest-first to push order.
handoff_task* reversed(handoff_task* t) {
  handoff_task* out = nullptr;
  while (t) {
    auto* next = t->next;
    t->next = out;
    out = t;
    t = next;
  }
  return out;
}

} // namespace

handoff::handoff(asio::io_context& ioc) : asio::io_context::service(ioc) {}

handoff::~handoff() {
  destroy_pending();
}

void handoff::push(std::unique_ptr<handoff_task> t) {
  auto* node = t.release();
  auto* head = head_.load(std::memory_order_relaxed);
  do {
    node->next = head;
  } while (!head_.compare_exchange_weak(head, node, std::memory_order_release,
                                        std::memory_order_relaxed));
  // The push that made the list non-empty owns the one pending drain; the
  // drain takes every task, so no push after it is left behind.
  if (!head)
    asio::post(get_io_context(), [this] {
      drain();
    });
}

void handoff::drain() {
  drains_.fetch_add(1, std::memory_order_relaxed);
  auto* t = reversed(head_.exchange(nullptr, std::memory_order_acquire));
  while (t) {
    std::unique_ptr<handoff_task> owned{t};
    t = t->next;
    owned->run();
  }
}

void handoff::shutdown() {
  destroy_pending();
}

void handoff::destroy_pending() {
  auto* t = head_.exchange(nullptr, std::memory_order_acquire);
  while (t) {
    std::unique_ptr<handoff_task> owned{t};
    t = t->next;
  }
}

} // namespace btcstream

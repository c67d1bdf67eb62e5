// The broadcaster's mailbox elements: what they hold, that a released one
// is reused instead of allocated again, from whatever thread it was
// released on, and that every reference to the message they hold is
// released, late but never lost. TSan runs this file (scripts/tsan).

#include "actors/element_pool.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace btcstream;

namespace {

caf::message text(const std::string& s) {
  return caf::make_message(s);
}

std::string held(caf::mailbox_element& e) {
  return e.content().get_as<std::string>(0);
}

std::vector<caf::mailbox_element_ptr> batch_of(element_pool& pool,
                                               const caf::message& msg, int n) {
  std::vector<caf::mailbox_element_ptr> batch;
  for (int i = 0; i < n; ++i)
    batch.push_back(pool.make(caf::make_message_id(), msg));
  return batch;
}

} // namespace

TEST_CASE("an element holds the message it was made with, shared") {
  element_pool pool;
  auto msg = text("live");
  auto e = pool.make(caf::make_message_id(), msg);
  REQUIRE(e->content().size() == 1);
  CHECK(held(*e) == "live");
  CHECK(!e->sender);
  CHECK(e->mid == caf::make_message_id());
  // Shared, not copied: the same message data, also after a read through
  // the element's content (as a handler reads it).
  CHECK(msg.cvals()->get_reference_count() == 2);
  CHECK(e->copy_content_to_message().cvals().get() == msg.cvals().get());
  CHECK(msg.cvals()->get_reference_count() == 2);
  CHECK(e->move_content_to_message().get_as<std::string>(0) == "live");
}

TEST_CASE("a released element is made again without an allocation") {
  element_pool pool;
  auto msg = text("a");
  // Warm: one element exists and is free.
  pool.make(caf::make_message_id(), msg).reset();
  auto before = element_pool::allocated();
  for (int i = 0; i < 1000; ++i) {
    auto e = pool.make(caf::make_message_id(), text(std::to_string(i)));
    CHECK(held(*e) == std::to_string(i));
  }
  CHECK(element_pool::allocated() == before);
}

TEST_CASE("a released element's thread drops its message reference at the "
          "next message, or when asked") {
  element_pool pool;
  auto a = text("a");
  auto b = text("b");
  element_pool::drop_held_messages();
  auto e = pool.make(caf::make_message_id(), a);
  CHECK(a.cvals()->get_reference_count() == 2);
  e.reset();
  // Held back by this thread, not released one by one.
  CHECK(a.cvals()->get_reference_count() == 2);
  // An element of another message: the first one's references go.
  pool.make(caf::make_message_id(), b).reset();
  CHECK(a.cvals()->get_reference_count() == 1);
  CHECK(b.cvals()->get_reference_count() == 2);
  element_pool::drop_held_messages();
  CHECK(b.cvals()->get_reference_count() == 1);
}

TEST_CASE("a thread that ends drops the message references it holds") {
  element_pool pool;
  auto msg = text("t");
  auto e = pool.make(caf::make_message_id(), msg);
  std::thread{[e = std::move(e)]() mutable {
    e.reset();
  }}.join();
  CHECK(msg.cvals()->get_reference_count() == 1);
}

namespace {

/// Releases its element when its thread ends.
struct released_at_exit {
  caf::mailbox_element_ptr element;
};

} // namespace

TEST_CASE("an element released after its thread's cache is gone is not "
          "lost") {
  element_pool pool;
  auto msg = text("exit");
  auto late_one = pool.make(caf::make_message_id(), msg);
  auto early_one = pool.make(caf::make_message_id(), msg);
  std::thread{[&] {
    // Constructed before the pool's cache for this thread, so destroyed
    // after it: its release comes when the cache is gone.
    thread_local released_at_exit late;
    late.element = std::move(late_one);
    early_one.reset(); // makes this thread's cache
  }}.join();
  // Neither reference is left behind in a destroyed cache.
  CHECK(msg.cvals()->get_reference_count() == 1);
}

TEST_CASE("make_each makes one element per receiver, in order") {
  element_pool pool;
  auto msg = text("fan");
  element_pool::drop_held_messages();
  constexpr size_t n = 600; // more than one block of counted references
  std::vector<caf::mailbox_element_ptr> got;
  pool.make_each(caf::make_message_id(), msg, n,
                 [&](size_t i, caf::mailbox_element_ptr e) {
                   CHECK(i == got.size());
                   got.push_back(std::move(e));
                 });
  REQUIRE(got.size() == n);
  CHECK(held(*got.front()) == "fan");
  CHECK(held(*got.back()) == "fan");
  CHECK(!got.back()->sender);
  CHECK(msg.cvals()->get_reference_count() == 1 + n);
  got.clear();
  element_pool::drop_held_messages();
  CHECK(msg.cvals()->get_reference_count() == 1);
}

TEST_CASE("make_each counts no reference that no element took") {
  element_pool pool;
  auto msg = text("stop");
  element_pool::drop_held_messages();
  std::vector<caf::mailbox_element_ptr> got;
  auto send = [&](size_t i, caf::mailbox_element_ptr e) {
    if (i == 300)
      throw std::runtime_error("receiver gone");
    got.push_back(std::move(e));
  };
  CHECK_THROWS_AS(pool.make_each(caf::make_message_id(), msg, 600, send),
                  std::runtime_error);
  CHECK(got.size() == 300);
  // The element handed to the failing send was released with it.
  element_pool::drop_held_messages();
  CHECK(msg.cvals()->get_reference_count() == 1 + 300);
  got.clear();
  element_pool::drop_held_messages();
  CHECK(msg.cvals()->get_reference_count() == 1);
}

TEST_CASE("elements released on other threads come back to the pool") {
  element_pool pool;
  auto msg = text("c");
  constexpr int rounds = 50;
  constexpr int per_round = 200;
  // Each round: this thread makes a batch, another thread releases the one
  // before meanwhile. At most two batches are ever in flight, so that is
  // all the pool may allocate (without reuse: rounds x per_round).
  auto before = element_pool::allocated();
  std::thread releaser;
  for (int r = 0; r < rounds; ++r) {
    auto batch = batch_of(pool, msg, per_round);
    if (releaser.joinable())
      releaser.join();
    releaser = std::thread{[b = std::move(batch)]() mutable {
      b.clear();
    }};
  }
  releaser.join();
  CHECK(msg.cvals()->get_reference_count() == 1);
  CHECK(element_pool::allocated() - before <= 2 * per_round);
}

TEST_CASE("a thread that keeps releasing hands its elements back in lists") {
  element_pool pool;
  auto msg = text("d");
  constexpr int rounds = 50;
  constexpr int per_round = 1000;
  // One long-lived thread releases every batch: it never ends, so what
  // comes back comes in its lists. At most two batches are in flight, and
  // the releasing thread holds back fewer than one list.
  auto before = element_pool::allocated();
  std::mutex m;
  std::condition_variable cv;
  std::vector<caf::mailbox_element_ptr> to_release;
  bool busy = false;
  bool done = false;
  std::thread releaser{[&] {
    std::unique_lock<std::mutex> lock{m};
    for (;;) {
      cv.wait(lock, [&] {
        return busy || done;
      });
      if (!busy)
        return;
      to_release.clear();
      busy = false;
      cv.notify_all();
    }
  }};
  for (int r = 0; r < rounds; ++r) {
    auto batch = batch_of(pool, msg, per_round);
    std::unique_lock<std::mutex> lock{m};
    cv.wait(lock, [&] {
      return !busy;
    });
    to_release = std::move(batch);
    busy = true;
    cv.notify_all();
  }
  {
    std::unique_lock<std::mutex> lock{m};
    cv.wait(lock, [&] {
      return !busy;
    });
    done = true;
    cv.notify_all();
  }
  releaser.join();
  CHECK(element_pool::allocated() - before <= 3 * per_round);
  CHECK(msg.cvals()->get_reference_count() == 1);
}

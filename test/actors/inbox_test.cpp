// The connection actor's inbox (src/actors/inbox.hpp): the reader is
// woken by the push that finds it waiting and by no other, gets the
// messages oldest first, cannot wait while one is queued, and a closed
// inbox hands every later push back. The last case pushes from several
// threads at once; TSan runs this file (scripts/tsan).

#include "actors/inbox.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

using namespace btcstream;

namespace {

caf::mailbox_element_ptr element(int32_t value) {
  return caf::make_mailbox_element(nullptr, caf::make_message_id(), {}, value);
}

/// The values of a list from take_all, in its order; frees the list.
std::vector<int32_t> values(caf::mailbox_element* e) {
  std::vector<int32_t> out;
  while (e != nullptr) {
    caf::mailbox_element_ptr owned{e};
    e = static_cast<caf::mailbox_element*>(e->next);
    out.push_back(owned->content().get_as<int32_t>(0));
  }
  return out;
}

} // namespace

TEST_CASE("inbox: the first push wakes the waiting reader, later ones only "
          "queue") {
  inbox box;
  auto a = element(1);
  CHECK(box.push(a) == inbox::pushed::woke_reader);
  CHECK_FALSE(a);
  auto b = element(2);
  CHECK(box.push(b) == inbox::pushed::queued);
  CHECK_EQ(values(box.take_all()), (std::vector<int32_t>{1, 2}));
}

TEST_CASE("inbox: the reader gets everything oldest first, and may wait "
          "only when nothing came in meanwhile") {
  inbox box;
  for (int32_t i = 1; i <= 5; ++i) {
    auto e = element(i);
    box.push(e);
  }
  CHECK_EQ(values(box.take_all()), (std::vector<int32_t>{1, 2, 3, 4, 5}));
  auto late = element(6);
  CHECK(box.push(late) == inbox::pushed::queued); // the reader still runs
  CHECK_FALSE(box.try_block());
  CHECK_EQ(values(box.take_all()), std::vector<int32_t>{6});
  CHECK(box.try_block());
  auto next = element(7);
  CHECK(box.push(next) == inbox::pushed::woke_reader);
  CHECK_EQ(values(box.take_all()), std::vector<int32_t>{7});
}

TEST_CASE("inbox: closing hands over what was queued, and every later push "
          "leaves its element with the caller") {
  inbox box;
  auto a = element(1);
  box.push(a);
  CHECK_FALSE(box.closed());
  CHECK_EQ(values(box.close()), std::vector<int32_t>{1});
  CHECK(box.closed());
  auto b = element(2);
  CHECK(box.push(b) == inbox::pushed::closed);
  REQUIRE(b);
  CHECK_EQ(b->content().get_as<int32_t>(0), 2);
  CHECK(box.closed());
}

TEST_CASE("inbox: pushes from four threads at once each arrive once, in "
          "each thread's order, with one wake-up per wait") {
  constexpr int32_t per_thread = 20000;
  constexpr int32_t threads = 4;
  inbox box;
  std::atomic<int> wakeups{0};
  std::vector<std::thread> pushers;
  for (int32_t t = 0; t < threads; ++t)
    pushers.emplace_back([&, t] {
      for (int32_t i = 0; i < per_thread; ++i) {
        auto e = element(t * per_thread + i);
        if (box.push(e) == inbox::pushed::woke_reader)
          wakeups.fetch_add(1);
      }
    });
  std::vector<int32_t> next(threads, 0); // each thread's next value
  int32_t got = 0;
  int woken = 1; // it starts waiting: the first push wakes it
  auto wait_for_wakeup = [&] {
    // No scheduler here to be woken by: it spins until the push that
    // found it waiting says so.
    while (wakeups.load() < woken)
      std::this_thread::yield();
  };
  wait_for_wakeup();
  for (;;) {
    for (auto v : values(box.take_all())) {
      auto t = v / per_thread;
      REQUIRE_EQ(v % per_thread, next[t]);
      ++next[t];
      ++got;
    }
    if (got == per_thread * threads)
      break;
    if (box.try_block()) {
      ++woken;
      wait_for_wakeup();
    }
  }
  for (auto& p : pushers)
    p.join();
  // Every wait was ended by exactly one push.
  CHECK_EQ(wakeups.load(), woken);
  CHECK_EQ(box.take_all(), nullptr);
}

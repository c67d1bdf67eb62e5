// The broadcaster's mailbox elements: what they hold, that a released one
// is reused instead of allocated again, from whatever thread it was
// released on. TSan runs this file (scripts/tsan).

#include "actors/element_pool.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

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

TEST_CASE("an element releases its message when it is released") {
  element_pool pool;
  auto msg = text("b");
  auto e = pool.make(caf::make_message_id(), msg);
  CHECK(msg.cvals()->get_reference_count() == 2);
  e.reset();
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
    std::vector<caf::mailbox_element_ptr> batch;
    for (int i = 0; i < per_round; ++i)
      batch.push_back(pool.make(caf::make_message_id(), msg));
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

#include "core/write_gate.hpp"

#include <doctest/doctest.h>

using namespace btcstream;

TEST_CASE("write_gate: shut until the strand first settles with nothing left") {
  write_gate g;
  CHECK_FALSE(g.try_write());
  g.settle(0, true); // the header is still being written
  CHECK_FALSE(g.try_write());
  g.settle(0, false);
  CHECK(g.try_write());
}

TEST_CASE("write_gate: one direct write at a time") {
  write_gate g;
  g.settle(0, false);
  REQUIRE(g.try_write());
  CHECK_FALSE(g.try_write());
  CHECK_FALSE(g.done_writing());
  CHECK(g.try_write());
}

TEST_CASE("write_gate: the caller's posts keep it shut until each has run") {
  write_gate g;
  g.settle(0, false);
  g.posting();
  g.posting();
  CHECK_FALSE(g.try_write());
  g.settle(1, false);
  CHECK_FALSE(g.try_write()); // one post still queued: a frame would pass it
  g.settle(1, false);
  CHECK(g.try_write());
}

TEST_CASE("write_gate: work left on the strand keeps it shut") {
  write_gate g;
  g.settle(0, false);
  g.posting();
  g.settle(1, true); // the socket took part of the batch: a wait for it
  CHECK_FALSE(g.try_write());
  g.settle(0, true); // writable, still more to write
  CHECK_FALSE(g.try_write());
  g.settle(0, false); // all written
  CHECK(g.try_write());
}

TEST_CASE("write_gate: a handed-over frame belongs to the strand") {
  write_gate g;
  g.settle(0, false);
  REQUIRE(g.try_write());
  CHECK_FALSE(g.hand_over());
  CHECK_FALSE(g.try_write());
  // The strand's handler for the rest of the frame, which it writes whole.
  g.settle(1, false);
  CHECK(g.try_write());
}

TEST_CASE("write_gate: a handed-over frame the strand cannot finish yet") {
  write_gate g;
  g.settle(0, false);
  REQUIRE(g.try_write());
  g.hand_over();
  g.settle(1, true);
  CHECK_FALSE(g.try_write());
  g.settle(0, false);
  CHECK(g.try_write());
}

TEST_CASE("write_gate: the strand closes at once when the caller is not "
          "writing, and the gate never opens again") {
  write_gate g;
  g.settle(0, false);
  CHECK(g.finishing());
  CHECK_FALSE(g.try_write());
  g.settle(0, false); // even a handler that finds nothing left
  CHECK_FALSE(g.try_write());
}

TEST_CASE("write_gate: a session that ends while the caller writes is "
          "closed by the caller, after its write") {
  SUBCASE("the write was whole") {
    write_gate g;
    g.settle(0, false);
    REQUIRE(g.try_write());
    CHECK_FALSE(g.finishing()); // the descriptor is in use
    CHECK(g.done_writing());    // so the caller has it closed
    CHECK_FALSE(g.try_write());
  }
  SUBCASE("the write was handed over") {
    write_gate g;
    g.settle(0, false);
    REQUIRE(g.try_write());
    CHECK_FALSE(g.finishing());
    CHECK(g.hand_over());
    g.settle(1, true);
    CHECK_FALSE(g.try_write());
  }
}

TEST_CASE("write_gate: a write that ended before the session ends leaves "
          "the close to the strand") {
  write_gate g;
  g.settle(0, false);
  REQUIRE(g.try_write());
  CHECK_FALSE(g.done_writing());
  CHECK(g.finishing());
  CHECK_FALSE(g.try_write());
}

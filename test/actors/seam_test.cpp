// The seam (DESIGN.md): a live update arriving before, during and after the
// history reply reaches the client exactly once, in order, every time.

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/connection.hpp"
#include "core/sse.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

/// One client resuming after update n, recorded in `sink`.
struct seam_fixture : core_fixture {
  std::shared_ptr<recording_sink> sink = std::make_shared<recording_sink>();
  connection_actor conn;

  /// Spawns the connection (its subscription is sent) without running
  /// anything.
  void connect_after(int n) { conn = spawn_connection(after(id(n)), sink); }
};

} // namespace

TEST_CASE("seam: an update stored before the subscription comes in the "
          "history") {
  seam_fixture f;
  for (int n = 1; n <= 3; ++n)
    f.publish(n);
  f.publish(4); // fully through before the client subscribes
  f.connect_after(1);
  f.run();
  CHECK_EQ(f.sink->ids(), f.ids(2, 4));
  CHECK_EQ(f.sink->live, std::vector<bool>{false, false, false});
}

TEST_CASE("seam: a live update arriving while the history is awaited is "
          "held and released once, after the history") {
  seam_fixture f;
  for (int n = 1; n <= 3; ++n)
    f.publish(n);
  f.connect_after(1); // subscribe → broadcaster
  f.step(f.b);        // ack upto = 3 → connection
  f.send_update(4);
  f.step(f.buf); // store 4, publish → broadcaster
  f.step(f.b);   // forward live 4 → connection (after the ack)
  // One turn takes both, in order: the ack (history(after 1, upto 3) →
  // buffer), then live 4, which arrives while holding.
  f.step(f.conn);
  CHECK(f.sink->frames.empty());
  f.run(); // history reply [2, 3], then the held 4
  CHECK_EQ(f.sink->ids(), f.ids(2, 4));
  f.publish(5);
  CHECK_EQ(f.sink->ids(), f.ids(2, 5));
}

TEST_CASE("seam: a live update after the history reply is forwarded live") {
  seam_fixture f;
  for (int n = 1; n <= 3; ++n)
    f.publish(n);
  f.connect_after(1);
  f.run();
  CHECK_EQ(f.sink->ids(), f.ids(2, 3));
  f.publish(4);
  CHECK_EQ(f.sink->ids(), f.ids(2, 4));
  CHECK(f.sink->live.back());
}

TEST_CASE("seam: a client that already has an update the broadcaster had not "
          "yet forwarded does not get it twice") {
  seam_fixture f;
  for (int n = 1; n <= 3; ++n)
    f.publish(n);
  // The client resumes from 4, which it got elsewhere (another node).
  f.connect_after(4); // subscribe → broadcaster
  f.step(f.b);        // ack upto = 3
  f.send_update(4);
  f.step(f.buf); // 4 stored before the history query
  f.step(f.b);   // live 4 → connection, held behind the ack
  f.run();       // history(after 4, upto 3): end_id 4, so the held 4 is dropped
  f.publish(5);
  CHECK_EQ(f.sink->ids(), f.ids(5, 5));
  CHECK_EQ(f.sink->frames.size(), 1u); // no gap event either
}

TEST_CASE("seam: every interleaving of two live updates with the resume is "
          "exactly once and in order") {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    seam_fixture f;
    for (int n = 1; n <= 3; ++n)
      f.publish(n);
    f.connect_after(1);
    f.send_update(4);
    f.send_update(5);
    f.run_shuffled(seed);
    f.publish(6);
    REQUIRE_EQ(f.sink->ids(), f.ids(2, 6));
    REQUIRE_EQ(f.sink->frames.size(), 5u);
  }
}

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

using connection_fixture = core_fixture;

std::string gap(const std::string& requested, std::optional<uint64_t> oldest) {
  return std::string(encode_gap(requested, oldest)->text());
}

} // namespace

TEST_CASE("a client without a resume point gets the latest update, then "
          "live") {
  connection_fixture f;
  f.publish(1);
  f.publish(2);
  auto [c, sink] = f.connect(resume_point{});
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(2)});
  f.publish(3);
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(2), f.id(3)}));
  CHECK_EQ(sink->frames.size(), 2u);
}

TEST_CASE("a connection holds its sink weakly: it never keeps a socket "
          "alive, and frames to a dropped sink go nowhere") {
  connection_fixture f;
  f.publish(1);
  auto sink = std::make_shared<recording_sink>();
  std::weak_ptr<recording_sink> watch = sink;
  auto c = f.stop_at_end(spawn_connection(*f.sys, sink, resume_point{}, f.b,
                                          f.buf, size_t{100}, f.stats,
                                          caf::timespan::zero()));
  f.run();
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(1)});
  sink.reset(); // what a session's end does
  CHECK(watch.expired());
  f.publish(2); // nowhere to go, and nothing breaks
  caf::anon_send(c, atom::heartbeat_v);
  f.run();
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 1u); // still subscribed
  caf::anon_send(c, atom::session_v, session_state::closed);
  f.run();
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 0u);
}

TEST_CASE("a client without a resume point on an empty buffer gets live "
          "updates and no gap") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  CHECK(sink->frames.empty());
  f.publish(1);
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(1)});
}

TEST_CASE("gap: a resume point older than the first update after a fresh "
          "start") {
  connection_fixture f;
  f.publish(10);
  f.publish(20);
  auto [c, sink] = f.connect(connection_fixture::after(5));
  REQUIRE_EQ(sink->frames.size(), 3u);
  CHECK_EQ(sink->frames[0], gap("5", f.id(10)));
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(10), f.id(20)}));
}

TEST_CASE("gap: updates after the resume point were evicted") {
  connection_fixture f{3};
  for (int n = 1; n <= 6; ++n)
    f.publish(n); // 1..3 evicted, 4..6 buffered
  auto [c, sink] = f.connect(connection_fixture::after(f.id(2)));
  REQUIRE_FALSE(sink->frames.empty());
  CHECK_EQ(sink->frames[0], gap(std::to_string(f.id(2)), f.id(4)));
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(4), f.id(5), f.id(6)}));
}

TEST_CASE("no gap: a resume from exactly the newest evicted id") {
  connection_fixture f{3};
  for (int n = 1; n <= 6; ++n)
    f.publish(n);
  auto [c, sink] = f.connect(connection_fixture::after(f.id(3)));
  CHECK_EQ(sink->frames.size(), 3u);
  CHECK_EQ(sink->ids(), (std::vector<uint64_t>{f.id(4), f.id(5), f.id(6)}));
}

TEST_CASE("gap: a resume id newer than any known id, and live updates are "
          "not filtered by it") {
  connection_fixture f;
  f.publish(1);
  auto [c, sink] = f.connect(connection_fixture::after(f.id(1000)));
  REQUIRE_EQ(sink->frames.size(), 1u);
  CHECK_EQ(sink->frames[0], gap(std::to_string(f.id(1000)), f.id(1)));
  f.publish(2);
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(2)});
}

TEST_CASE("gap: an empty buffer, with oldest null") {
  connection_fixture f;
  auto [c, sink] = f.connect(connection_fixture::after(42));
  REQUIRE_EQ(sink->frames.size(), 1u);
  CHECK_EQ(sink->frames[0], gap("42", std::nullopt));
}

TEST_CASE("a closed session ends the connection, which the broadcaster "
          "then forgets") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 1u);
  caf::anon_send(c, atom::session_v, session_state::slow);
  f.run();
  CHECK(sink->closed);
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 0u);
}

TEST_CASE("an ended connection leaves nothing of itself at the broadcaster") {
  // A monitor lives at the monitored actor and holds the observer's
  // address, a weak reference that keeps the observer's memory allocated:
  // a connection that never removed its monitor of the broadcaster leaked
  // about 1 KB per client ever connected (found by the churn benchmark).
  // Connections no longer monitor it at all; this keeps any reference
  // from coming back.
  connection_fixture f;
  auto sink = std::make_shared<recording_sink>();
  // Not through the fixture, which keeps a handle to stop it at the end.
  auto c = spawn_connection(*f.sys, sink, resume_point{}, f.b, f.buf,
                            size_t{100}, f.stats, caf::timespan::zero());
  f.run();
  caf::actor_addr addr = c.address();
  caf::anon_send(c, atom::session_v, session_state::closed);
  c = nullptr;
  f.run();
  CHECK(sink->closed);
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 0u);
  // Only `addr` is left: no strong reference, no other weak one.
  auto* block = caf::actor_cast<caf::actor_control_block*>(addr);
  CHECK_EQ(block->strong_refs.load(), 0u);
  CHECK_EQ(block->weak_refs.load(), 1u);
}

TEST_CASE("the broadcaster's death ends every connection and closes its "
          "stream") {
  connection_fixture f;
  auto [c1, s1] = f.connect(resume_point{});
  auto [c2, s2] = f.connect(resume_point{});
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.run();
  CHECK(s1->closed);
  CHECK(s2->closed);
}

TEST_CASE("updates already on their way reach the client before the "
          "broadcaster's death ends the stream") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  f.send_update(1);
  f.step(f.buf); // stores it and hands it to the broadcaster
  f.step(f.b);   // which sends it to the connection, not yet run
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.step(f.b); // dies first: `ended` queues behind the update
  f.run();
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(1)});
  CHECK(sink->closed_with == end_cause::shutdown);
}

TEST_CASE("a broadcaster that fails ends its streams as errors") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  caf::anon_send_exit(f.b, caf::exit_reason::kill);
  f.run();
  CHECK(sink->closed_with == end_cause::error);
}

TEST_CASE("heartbeats reach the client as `: hb` comments") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  f.advance(15s);
  CHECK_EQ(sink->count(": hb\n\n"), 1u);
}

TEST_CASE("a stream ends cleanly at its maximum age, and a resume from its "
          "last id continues exactly") {
  connection_fixture f;
  f.max_age = caf::timespan{10s};
  f.publish(1);
  auto [c, sink] = f.connect(resume_point{});
  f.publish(2);
  f.advance(9999ms);
  CHECK_FALSE(sink->closed);
  f.advance(1ms);
  REQUIRE(sink->closed);
  CHECK(sink->closed_with == end_cause::max_age);
  CHECK_EQ(sink->ids(), f.ids(1, 2));
  f.publish(3);
  CHECK_EQ(sink->ids(), f.ids(1, 2)); // nothing after the end
  f.max_age = caf::timespan::zero();
  auto [c2, resumed] = f.connect(connection_fixture::after(f.id(2)));
  CHECK_EQ(resumed->ids(), f.ids(3, 3));
  CHECK(resumed->frames.size() == 1); // no gap
}

TEST_CASE("without a maximum age a stream never ends by itself") {
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  f.advance(std::chrono::hours{48});
  CHECK_FALSE(sink->closed);
}

TEST_CASE("a connection keeps CAF's rules for what it does not handle: a "
          "normal exit message leaves it running, another ends it, and a "
          "request to it fails at once, running or ended") {
  // The connection actor is written by hand (connection.hpp), so these are
  // its own code, not CAF's.
  connection_fixture f;
  auto [c, sink] = f.connect(resume_point{});
  // The error a request to the connection gets (nothing, if it gets no
  // answer: the asker is killed then, or the system would wait for it).
  auto request_error = [&f, c = c] {
    auto out = std::make_shared<std::optional<caf::error>>();
    auto asker = f.sys->spawn(
        [c](caf::event_based_actor* self,
            std::shared_ptr<std::optional<caf::error>> res) {
          self->request(caf::actor_cast<caf::actor>(c),
                        std::chrono::seconds{10}, atom::ping_v)
              .then(
                  [res](uint64_t) {
                    *res = caf::error{};
                  },
                  [res](caf::error& err) {
                    *res = std::move(err);
                  });
        },
        out);
    f.run();
    caf::anon_send_exit(asker, caf::exit_reason::kill);
    f.run();
    return *out;
  };
  auto running = request_error();
  REQUIRE(running.has_value());
  CHECK_EQ(*running, caf::make_error(caf::sec::unexpected_message));

  caf::anon_send_exit(c, caf::exit_reason::normal);
  f.run();
  CHECK_FALSE(sink->closed);
  f.publish(1);
  CHECK_EQ(sink->ids(), std::vector<uint64_t>{f.id(1)});

  caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  f.run();
  CHECK_EQ(sink->closed_with, end_cause::shutdown);
  CHECK_EQ(ask<uint64_t>(f, f.b, atom::ping_v), 0u); // the monitor fired
  auto ended = request_error();
  REQUIRE(ended.has_value());
  CHECK_EQ(*ended, caf::make_error(caf::sec::request_receiver_down));
}

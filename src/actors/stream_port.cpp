#include "actors/stream_port.hpp"

#include "actors/connection.hpp"

#include "core/clock.hpp"

#include <caf/all.hpp>

#include <random>

namespace btcstream {

namespace {

/// Forwards the session's state change to its connection actor.
class actor_session_events final : public session_events {
public:
  explicit actor_session_events(connection_actor c) : conn_(std::move(c)) {}

  void on_state(session_state s) override {
    caf::anon_send(conn_, atom::session_v, s);
  }

private:
  connection_actor conn_;
};

class actor_stream_port final : public stream_port {
public:
  actor_stream_port(caf::actor_system& sys, broadcaster_actor b,
                    buffer_actor buf, size_t max_held,
                    std::shared_ptr<metrics> stats, caf::timespan max_age)
      : sys_(sys),
        broadcaster_(std::move(b)),
        buffer_(std::move(buf)),
        max_held_(max_held),
        stats_(std::move(stats)),
        max_age_(max_age) {}

  std::shared_ptr<session_events>
  open(resume_point from, std::shared_ptr<frame_sink> sink) override {
    // ±10 % per stream, so that streams opened together do not all end
    // (and reconnect) together.
    auto age = caf::timespan::zero();
    if (max_age_ > caf::timespan::zero()) {
      thread_local seeded_random rng{std::random_device{}()};
      age = caf::timespan{jitter(max_age_.count(), 0.1, rng)};
    }
    auto c = spawn_connection(sys_, std::move(sink), std::move(from),
                              broadcaster_, buffer_, max_held_, stats_, age);
    return std::make_shared<actor_session_events>(std::move(c));
  }

private:
  caf::actor_system& sys_;
  broadcaster_actor broadcaster_;
  buffer_actor buffer_;
  size_t max_held_;
  std::shared_ptr<metrics> stats_;
  caf::timespan max_age_;
};

} // namespace

std::shared_ptr<stream_port>
make_stream_port(caf::actor_system& sys, broadcaster_actor broadcaster,
                 buffer_actor buffer, size_t max_held,
                 std::shared_ptr<metrics> stats, caf::timespan max_age) {
  return std::make_shared<actor_stream_port>(sys, std::move(broadcaster),
                                             std::move(buffer), max_held,
                                             std::move(stats), max_age);
}

} // namespace btcstream

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/supervision.hpp"
#include "harness.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

struct supervision_fixture : fixture {
  broadcaster_actor b;
  buffer_actor buf;
  bool shutting_down = false;
  std::vector<std::string> deaths;

  supervision_fixture() {
    b = stop_at_end(sys->spawn(broadcaster, caf::timespan{15s}, stats));
    buf = stop_at_end(sys->spawn(buffer, size_t{10}, 1h, b, clock, stats,
                                 caf::timespan::zero()));
    run();
    auto expected = [this] {
      return shutting_down;
    };
    auto on_death = [this](const std::string& who, const std::string&) {
      deaths.push_back(who);
    };
    watch_core_actor(caf::actor_cast<caf::actor>(b), "broadcaster", expected,
                     on_death);
    watch_core_actor(caf::actor_cast<caf::actor>(buf), "buffer", expected,
                     on_death);
  }
};

} // namespace

TEST_CASE("a core actor that dies outside shutdown is reported, and its "
          "linked peers with it") {
  supervision_fixture f;
  caf::anon_send_exit(f.buf, caf::exit_reason::kill);
  f.run();
  // The buffer is linked to the broadcaster: both go, both are reported.
  CHECK_EQ(f.deaths.size(), 2u);
  CHECK(std::find(f.deaths.begin(), f.deaths.end(), "buffer")
        != f.deaths.end());
  CHECK(std::find(f.deaths.begin(), f.deaths.end(), "broadcaster")
        != f.deaths.end());
}

TEST_CASE("core actors ending during shutdown are not reported") {
  supervision_fixture f;
  f.shutting_down = true;
  caf::anon_send_exit(f.b, caf::exit_reason::user_shutdown);
  f.run();
  CHECK(f.deaths.empty());
}

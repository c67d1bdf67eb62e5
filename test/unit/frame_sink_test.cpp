#include "core/frame_sink.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace btcstream;

namespace {

// The shape of the actor tests' fake sink: the interface is implementable
// without any I/O.
struct recording_sink final : frame_sink {
  std::vector<std::string> live;
  std::vector<std::string> replayed;
  int closes = 0;
  void deliver(frame_ptr f) override { live.push_back(*f); }
  void replay(std::vector<frame_ptr> frames) override {
    for (auto& f : frames)
      replayed.push_back(*f);
  }
  void close() override { ++closes; }
};

} // namespace

TEST_CASE("session states have stable names for logs and metrics") {
  CHECK(std::string{to_string(session_state::closed)} == "closed");
  CHECK(std::string{to_string(session_state::slow)} == "slow");
  CHECK(std::string{to_string(session_state::stalled)} == "stalled");
}

TEST_CASE("a frame sink keeps live and replayed frames apart") {
  recording_sink sink;
  frame_sink& port = sink;
  port.replay({std::make_shared<const std::string>("a"),
               std::make_shared<const std::string>("b")});
  port.deliver(std::make_shared<const std::string>("c"));
  port.close();
  CHECK(sink.replayed == std::vector<std::string>{"a", "b"});
  CHECK(sink.live == std::vector<std::string>{"c"});
  CHECK(sink.closes == 1);
}

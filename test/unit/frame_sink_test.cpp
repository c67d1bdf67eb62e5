#include "core/frame_sink.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace btcstream;

TEST_CASE("session states have stable names for logs and metrics") {
  CHECK(std::string{to_string(session_state::closed)} == "closed");
  CHECK(std::string{to_string(session_state::slow)} == "slow");
  CHECK(std::string{to_string(session_state::stalled)} == "stalled");
}

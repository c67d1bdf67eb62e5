#include "core/frame_sink.hpp"

namespace btcstream {

const char* to_string(session_state s) {
  switch (s) {
  case session_state::closed:
    return "closed";
  case session_state::slow:
    return "slow";
  case session_state::stalled:
    return "stalled";
  }
  return "unknown";
}

} // namespace btcstream

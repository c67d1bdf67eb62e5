#include "core/event_id.hpp"

#include <limits>

namespace btcstream {

uint64_t next_event_id(uint64_t previous, int64_t now_ms) {
  // Saturate rather than wrap to 0: a wrapped id would replay as "older".
  auto after = previous == std::numeric_limits<uint64_t>::max() ? previous
                                                                : previous + 1;
  if (now_ms < 0)
    return after;
  auto now = static_cast<uint64_t>(now_ms);
  return now > after ? now : after;
}

} // namespace btcstream

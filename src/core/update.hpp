#pragma once

#include "core/frame.hpp"

#include <cstdint>
#include <memory>

namespace btcstream {

/// One successful poll of the upstream: the unit that is stored and streamed.
struct update {
  /// Event id: max(retrieval time in unix ms, previous id + 1); see
  /// event_id.hpp.
  uint64_t id = 0;
  /// Retrieval time in unix milliseconds (UTC).
  int64_t ts_ms = 0;
  /// BTC/USD price, finite and > 0.
  double price = 0;
};

inline bool operator==(const update& a, const update& b) {
  return a.id == b.id && a.ts_ms == b.ts_ms && a.price == b.price;
}

class fanout_probe;

/// An update together with its encoded frame, as the buffer stores it.
struct stored {
  update u;
  frame_ptr frame;
  /// When the buffer stored it (steady clock, ns): the start of the fan-out
  /// and delivery latencies.
  int64_t stored_ns = 0;
  /// Set by the broadcaster on each fan-out; every connection reports to it.
  std::shared_ptr<fanout_probe> probe;
  /// Non-zero when the log had a hole before this update (cluster mode): a
  /// client whose last id is below this value may have missed updates and
  /// gets `event: gap` before this frame.
  uint64_t gap_below = 0;
};

} // namespace btcstream

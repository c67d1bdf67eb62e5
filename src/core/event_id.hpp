#pragma once

#include <cstdint>

namespace btcstream {

/// Returns the id of the next update: max(retrieval time in unix ms,
/// previous id + 1). Ids stay strictly increasing when the wall clock jumps
/// back, and stay ahead of ids of an earlier run because they track real time.
/// @param previous the last id assigned, 0 if none.
/// @param now_ms the retrieval time in unix milliseconds.
uint64_t next_event_id(uint64_t previous, int64_t now_ms);

} // namespace btcstream

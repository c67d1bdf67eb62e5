#include "core/write_gate.hpp"

#include <cassert>

namespace btcstream {

void write_gate::settle(uint64_t posts_done, bool left) {
  auto was = word_.load(std::memory_order_relaxed);
  uint64_t next = 0;
  do {
    assert(was / one_post >= posts_done);
    next = was - posts_done * one_post;
    next = left ? (next | pending) : (next & ~pending);
  } while (!word_.compare_exchange_weak(was, next, std::memory_order_acq_rel,
                                        std::memory_order_relaxed));
  // Work left on the strand while the caller writes would interleave: the
  // caller writes only when the gate was open, and no strand handler but
  // one that finishes (finishing) can start then.
  assert(!(left && (was & writing)));
}

} // namespace btcstream

#pragma once

#include <atomic>
#include <cstdint>

namespace btcstream {

/// Who may write to an SSE session's socket: its strand, or the one caller
/// that feeds it frames (the connection actor, on a CAF worker).
///
/// Nearly every live frame reaches a client with nothing pending, and then
/// the caller writes it itself instead of posting it to the strand. It may
/// do so only while the strand has nothing pending and every post of the
/// caller's has run, so that frames stay in order; the strand must not
/// close the socket while the caller writes, so that the descriptor is not
/// reused under it. One atomic word, no lock: neither side ever waits.
///
///   caller:  try_write ─yes─▶ write ─whole─▶ done_writing
///              │ no                 └─part─▶ hand_over (the strand has it)
///              ▼
///            posting, then post to the strand
///   strand:  settle at the end of each handler; finishing before it closes
class write_gate {
public:
  /// Caller: true when it may write now. Then it must call done_writing or
  /// hand_over.
  bool try_write() {
    uint64_t open = 0;
    return word_.compare_exchange_strong(
        open, writing, std::memory_order_acquire, std::memory_order_relaxed);
  }

  /// Caller: the frame went out whole. True when the strand finished the
  /// session meanwhile: the caller must now have the socket closed.
  bool done_writing() {
    return word_.fetch_and(~writing, std::memory_order_acq_rel) & finished;
  }

  /// Caller: the socket took only part of the frame (or failed). The strand
  /// takes over, with one post of the caller's counted (the rest of the
  /// frame). True as for done_writing.
  bool hand_over() {
    auto was = word_.load(std::memory_order_relaxed);
    while (!word_.compare_exchange_weak(
        was, ((was & ~writing) | pending) + one_post, std::memory_order_acq_rel,
        std::memory_order_relaxed)) {
    }
    return was & finished;
  }

  /// Caller: about to post to the strand. Keeps the gate shut until that
  /// post has run and settled.
  void posting() { word_.fetch_add(one_post, std::memory_order_relaxed); }

  /// Strand, at the end of every handler that may change what is pending:
  /// `posts_done` of the caller's posts have run, and the strand has work
  /// `left` (queued bytes, a wait, a close) or not.
  void settle(uint64_t posts_done, bool left);

  /// Strand, when the session ends: the gate stays shut from now on. True
  /// when the strand may close the socket at once; false when the caller is
  /// writing, and will have it closed when done (done_writing/hand_over).
  bool finishing() {
    return !(word_.fetch_or(pending | finished, std::memory_order_acq_rel)
             & writing);
  }

  /// Strand: true while the caller is in a write (between try_write and
  /// done_writing or hand_over). What the caller stored before it left the
  /// write is visible once this is false.
  bool caller_writing() const {
    return word_.load(std::memory_order_acquire) & writing;
  }

private:
  static constexpr uint64_t writing = 1;  // the caller writes now
  static constexpr uint64_t pending = 2;  // the strand has work left
  static constexpr uint64_t finished = 4; // the session ended
  static constexpr uint64_t one_post = 8; // per caller post not yet run

  std::atomic<uint64_t> word_{pending}; // shut until the first settle
};

} // namespace btcstream

#pragma once

#include "core/query.hpp"
#include "core/update.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace btcstream {

/// The answer to a history query: what a resuming client must receive before
/// live frames, and whether updates after its resume point may be missing.
struct history {
  /// Frames to replay, oldest first.
  std::vector<frame_ptr> frames;
  /// Live frames with id <= end_id are already covered by this reply (or by
  /// the client itself) and must not be forwarded again.
  uint64_t end_id = 0;
  /// Whether updates after the resume point may be missing (DESIGN.md, Gap).
  bool gap = false;
  /// The oldest buffered id at the time of the reply, if any.
  std::optional<uint64_t> oldest;
  /// The newest id known at the time of the reply.
  uint64_t newest = 0;
  /// Whether `gap` was judged for the resume point against every hole up to
  /// `newest` (resumes by id or time), so held live frames up to `newest`
  /// need no gap event of their own.
  bool holes_judged = false;
};

/// A bounded ring of stored updates with a time-to-live. Ids must increase.
class ring_buffer {
public:
  /// @param capacity the maximum number of entries (>= 1).
  /// @param ttl entries older than this (by ts_ms) are evicted by `expire`.
  ring_buffer(size_t capacity, std::chrono::milliseconds ttl);

  /// Appends an entry that follows the newest one, evicting the oldest when
  /// full. Returns false (and stores nothing) if the id does not exceed every
  /// id seen before.
  bool push(stored s) { return push(std::move(s), newest_id_) != nullptr; }

  /// Appends an entry whose predecessor in the log is `prev` (cluster mode).
  /// When `prev` is not the newest id held, updates may be missing before
  /// this one (a hole): the entry is stored with `gap_below` set, and resumes
  /// across the hole report a gap. Returns the stored entry, or nullptr (and
  /// stores nothing) if the id does not exceed every id seen before.
  const stored* push(stored s, uint64_t prev);

  /// Evicts every entry with ts_ms < now_ms - ttl.
  void expire(int64_t now_ms);

  /// Answers a resume query: the frames after `from` whose id is <= `upto`.
  /// `upto` is the last id the broadcaster forwarded before the client
  /// subscribed (the seam, DESIGN.md).
  history query(const resume_point& from, uint64_t upto) const;

  /// Every buffered entry with ts_ms >= since_ms, oldest first.
  std::vector<stored> since(int64_t since_ms) const;

  size_t size() const { return size_; }
  size_t capacity() const { return slots_.size(); }
  bool empty() const { return size_ == 0; }
  /// The oldest and newest buffered entries; the buffer must not be empty.
  const stored& oldest() const;
  const stored& newest() const;
  /// The newest id ever pushed (0 if none), buffered or evicted.
  uint64_t newest_id() const { return newest_id_; }
  /// The holes found by `push` so far.
  uint64_t holes() const { return holes_; }

private:
  const stored& at(size_t i) const;      // i-th oldest
  size_t first_after(uint64_t id) const; // index of first entry with id > id
  void evict_oldest();

  std::vector<stored> slots_;
  std::chrono::milliseconds ttl_;
  size_t head_ = 0; // index of the oldest entry in slots_
  size_t size_ = 0;
  uint64_t newest_id_ = 0;
  // A resume after an id below covered_id_, or since a time below
  // covered_ts_, may miss updates: they predate the first update held, were
  // evicted, or fell into a hole.
  uint64_t covered_id_ = 0;
  int64_t covered_ts_ = 0;
  uint64_t holes_ = 0;
};

} // namespace btcstream

#pragma once

#include "core/ring_buffer.hpp"
#include "core/update.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace btcstream {

/// The hold/replay/release rule that makes a resume exactly-once and in
/// order (DESIGN.md, "The seam"), as plain logic for the connection actor.
///
///   holding ──history──▶ live
///
/// While holding, live frames are kept. The history reply is written, then
/// the held frames with id > the last id written, then every later live frame
/// with id > the last id written. A frame after a hole in the log (cluster
/// mode) whose `gap_below` is above the last id written is preceded by a gap
/// event, once: the client may have missed updates.
class seam {
public:
  /// @param requested the resume point as given, for the gap event.
  explicit seam(std::string requested);

  /// A live frame from the broadcaster. Returns the frame to write now
  /// (`&s.frame`), or null (held, or already covered). When it returns a
  /// frame after a hole, `take_gap` returns the gap event to write before
  /// it. A pointer, not a copy: every client shares the frame's reference
  /// count, and each update of it is a cache line moving between cores.
  const frame_ptr* on_live(const stored& s);

  /// The gap event that must precede the frame `on_live` just returned, or
  /// null (almost always).
  frame_ptr take_gap() { return std::move(gap_); }

  /// The history reply. Returns everything to write, in order: a gap event
  /// if needed, the replayed frames, then the released held frames.
  std::vector<frame_ptr> on_history(const history& h);

  bool holding() const { return holding_; }
  size_t held() const { return held_.size(); }
  uint64_t last_written() const { return last_written_; }
  /// Gap events returned so far (replay, held and live).
  size_t gaps() const { return gaps_; }

private:
  // What on_live and take_gap touch first, together (docs/performance.md,
  // "Cold lines").
  bool holding_ = true;
  uint64_t last_written_ = 0;
  frame_ptr gap_;
  std::vector<stored> held_;
  size_t gaps_ = 0;
  std::string requested_;
};

} // namespace btcstream

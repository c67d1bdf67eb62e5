#include "core/seam.hpp"

#include "core/sse.hpp"

#include <algorithm>

namespace btcstream {

seam::seam(std::string requested) : requested_(std::move(requested)) {
  // nop
}

const frame_ptr* seam::on_live(const stored& s) {
  if (holding_) {
    held_.push_back(s);
    return nullptr;
  }
  if (s.u.id <= last_written_)
    return nullptr;
  if (s.gap_below > last_written_) {
    gap_ = encode_gap(std::to_string(last_written_), s.u.id);
    ++gaps_;
  }
  last_written_ = s.u.id;
  return &s.frame;
}

std::vector<frame_ptr> seam::on_history(const history& h) {
  std::vector<frame_ptr> out;
  out.reserve(h.frames.size() + held_.size() + 1);
  if (h.gap) {
    out.push_back(encode_gap(requested_, h.oldest));
    ++gaps_;
  }
  out.insert(out.end(), h.frames.begin(), h.frames.end());
  // Replayed frames all have ids <= end_id, so end_id is the last id written.
  last_written_ = std::max(last_written_, h.end_id);
  for (auto& s : held_) {
    if (s.u.id > last_written_) {
      // Holes the buffer knew of when it answered a resume are covered by
      // its gap answer.
      bool judged = (h.gap || h.holes_judged) && s.u.id <= h.newest;
      if (s.gap_below > last_written_ && !judged) {
        out.push_back(encode_gap(std::to_string(last_written_), s.u.id));
        ++gaps_;
      }
      out.push_back(s.frame);
      last_written_ = s.u.id;
    }
  }
  holding_ = false;
  held_.clear();
  held_.shrink_to_fit();
  return out;
}

} // namespace btcstream

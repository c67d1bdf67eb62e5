#include "core/ring_buffer.hpp"

#include <algorithm>
#include <limits>

namespace btcstream {

namespace {

// The first index in [0, n) where `before` turns false; `before` must be true
// on a prefix and false on the rest (ids increase, timestamps never fall).
template<class Pred>
size_t partition_index(size_t n, Pred before) {
  size_t lo = 0;
  size_t hi = n;
  while (lo < hi) {
    auto mid = lo + (hi - lo) / 2;
    if (before(mid))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

int64_t saturating_sub(int64_t a, int64_t b) {
  constexpr auto lo = std::numeric_limits<int64_t>::min();
  constexpr auto hi = std::numeric_limits<int64_t>::max();
  if (b > 0 && a < lo + b)
    return lo;
  if (b < 0 && a > hi + b)
    return hi;
  return a - b;
}

} // namespace

// A zero capacity would make every push evict what it just stored (and divide
// by zero); one slot is the least that works.
ring_buffer::ring_buffer(size_t capacity, std::chrono::milliseconds ttl)
    : slots_(std::max<size_t>(capacity, 1)), ttl_(ttl) {
  // nop
}

bool ring_buffer::push(stored s) {
  if (s.u.id <= newest_id_)
    return false;
  if (newest_id_ == 0) {
    first_id_ = s.u.id;
    first_ts_ = s.u.ts_ms;
  }
  if (size_ == slots_.size())
    evict_oldest();
  newest_id_ = s.u.id;
  slots_[(head_ + size_) % slots_.size()] = std::move(s);
  ++size_;
  return true;
}

void ring_buffer::expire(int64_t now_ms) {
  auto cutoff = saturating_sub(now_ms, ttl_.count());
  while (size_ > 0 && oldest().u.ts_ms < cutoff)
    evict_oldest();
}

history ring_buffer::query(const resume_point& from, uint64_t upto) const {
  history h;
  h.end_id = upto;
  if (size_ > 0)
    h.oldest = oldest().u.id;
  // Entries [0, end) have id <= upto.
  auto end = first_after(upto);
  auto append_from = [&](size_t begin) {
    for (auto i = begin; i < end; ++i)
      h.frames.push_back(at(i).frame);
  };
  switch (from.what) {
  case resume_point::kind::latest:
    if (end > 0)
      h.frames.push_back(at(end - 1).frame);
    break;
  case resume_point::kind::after_id: {
    auto r = from.id;
    h.gap = empty() || r > newest_id_
            || (newest_evicted_ ? newest_evicted_->id > r : r < first_id_);
    // An id newer than any we know (another node's, or a clock from the
    // future) must not hold back live frames; any other id the client has.
    if (r <= newest_id_)
      h.end_id = std::max(upto, r);
    append_from(first_after(r));
    break;
  }
  case resume_point::kind::since: {
    auto t = from.since_ms;
    h.gap = empty()
            || (newest_evicted_ ? newest_evicted_->ts_ms >= t : t < first_ts_);
    append_from(partition_index(size_, [&](size_t i) {
      return at(i).u.ts_ms < t;
    }));
    break;
  }
  case resume_point::kind::live:
    break;
  }
  return h;
}

std::vector<stored> ring_buffer::since(int64_t since_ms) const {
  std::vector<stored> out;
  auto begin = partition_index(size_, [&](size_t i) {
    return at(i).u.ts_ms < since_ms;
  });
  out.reserve(size_ - begin);
  for (auto i = begin; i < size_; ++i)
    out.push_back(at(i));
  return out;
}

const stored& ring_buffer::oldest() const {
  return at(0);
}

const stored& ring_buffer::newest() const {
  return at(size_ - 1);
}

const stored& ring_buffer::at(size_t i) const {
  return slots_[(head_ + i) % slots_.size()];
}

size_t ring_buffer::first_after(uint64_t id) const {
  return partition_index(size_, [&](size_t i) {
    return at(i).u.id <= id;
  });
}

void ring_buffer::evict_oldest() {
  newest_evicted_ = slots_[head_].u;
  // Drop the frame now rather than on overwrite: clients may hold the bytes,
  // the buffer should not.
  slots_[head_] = stored{};
  head_ = (head_ + 1) % slots_.size();
  --size_;
}

} // namespace btcstream

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

const stored* ring_buffer::push(stored s, uint64_t prev) {
  if (s.u.id <= newest_id_)
    return nullptr;
  if (newest_id_ == 0) {
    // The first update held: a resume from its predecessor misses nothing,
    // from anything older it may.
    covered_id_ = prev > 0 ? prev : s.u.id;
    covered_ts_ = s.u.ts_ms;
  } else if (prev != newest_id_) {
    // A hole. When the log skipped ahead, a client that has `prev` (from
    // another node) misses nothing; when the log went back (Redis restarted
    // empty), what came between is unknowable.
    s.gap_below = prev > newest_id_ ? prev : s.u.id;
    covered_id_ = std::max(covered_id_, s.gap_below);
    covered_ts_ = std::max(covered_ts_, s.u.ts_ms);
    ++holes_;
  }
  if (size_ == slots_.size())
    evict_oldest();
  newest_id_ = s.u.id;
  auto& slot = slots_[(head_ + size_) % slots_.size()];
  slot = std::move(s);
  ++size_;
  return &slot;
}

void ring_buffer::expire(int64_t now_ms) {
  auto cutoff = saturating_sub(now_ms, ttl_.count());
  while (size_ > 0 && oldest().u.ts_ms < cutoff)
    evict_oldest();
}

history ring_buffer::query(const resume_point& from, uint64_t upto) const {
  history h;
  h.end_id = upto;
  h.newest = newest_id_;
  if (size_ > 0)
    h.oldest = oldest().u.id;
  // Entries [0, end) have id <= upto.
  auto end = first_after(upto);
  auto append_from = [&](size_t begin) {
    // A gap's `oldest` is the first id available after the resume point:
    // the oldest buffered one, unless the gap is a hole further on.
    if (h.gap && begin < size_)
      h.oldest = at(begin).u.id;
    for (auto i = begin; i < end; ++i)
      h.frames.push_back(at(i).frame);
  };
  switch (from.what) {
  case resume_point::kind::latest:
    if (end > 0)
      h.frames.push_back(at(end - 1).frame);
    break;
  case resume_point::kind::after_id: {
    h.holes_judged = true;
    auto r = from.id;
    h.gap = empty() || r > newest_id_ || r < covered_id_;
    // An id newer than any we know (another node's, or a clock from the
    // future) must not hold back live frames; any other id the client has.
    if (r <= newest_id_)
      h.end_id = std::max(upto, r);
    append_from(first_after(r));
    break;
  }
  case resume_point::kind::since: {
    h.holes_judged = true;
    auto t = from.since_ms;
    h.gap = empty() || t < covered_ts_;
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
  // A resume from exactly the newest evicted id misses nothing.
  covered_id_ = std::max(covered_id_, slots_[head_].u.id);
  auto ts = slots_[head_].u.ts_ms;
  covered_ts_ = std::max(
      covered_ts_, ts < std::numeric_limits<int64_t>::max() ? ts + 1 : ts);
  // Drop the frame now rather than on overwrite: clients may hold the bytes,
  // the buffer should not.
  slots_[head_] = stored{};
  head_ = (head_ + 1) % slots_.size();
  --size_;
}

} // namespace btcstream

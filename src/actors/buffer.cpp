#include "actors/buffer.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>

#include <limits>

namespace btcstream {

namespace {

/// Drops what outlived the TTL and refreshes the buffer gauges.
void expire(buffer_state& st) {
  st.ring->expire(st.clock->now_ms());
  auto& m = *st.stats;
  m.buffer_entries.store(st.ring->size(), std::memory_order_relaxed);
  m.buffer_oldest_ts_ms.store(st.ring->empty() ? 0 : st.ring->oldest().u.ts_ms,
                              std::memory_order_relaxed);
}

} // namespace

buffer_actor::behavior_type
buffer(buffer_actor::stateful_pointer<buffer_state> self, size_t capacity,
       std::chrono::milliseconds ttl, broadcaster_actor broadcaster,
       std::shared_ptr<const wall_clock> clock,
       std::shared_ptr<metrics> stats) {
  if (capacity == 0 || !broadcaster || !clock || !stats) {
    self->quit(make_error(ec::invalid_argument,
                          "buffer needs capacity, broadcaster, clock, stats"));
    return buffer_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.ring.emplace(capacity, ttl);
  st.broadcaster = std::move(broadcaster);
  st.clock = std::move(clock);
  st.stats = std::move(stats);
  self->link_to(st.broadcaster);
  return {
      // A validated update with its id, from the fetcher.
      [self](atom::publish, const update& u) {
        auto& st = self->state;
        stored s{u, encode_update(u), steady_now_ns(), nullptr};
        if (!st.ring->push(s)) {
          log(log_level::error, "buffer drops update " + std::to_string(u.id)
                                    + ": id not above "
                                    + std::to_string(st.ring->newest_id()));
          return;
        }
        expire(st);
        st.last = u;
        auto& m = *st.stats;
        m.events_published.fetch_add(1, std::memory_order_relaxed);
        m.last_price_usd.store(u.price, std::memory_order_relaxed);
        m.last_price_ts_ms.store(u.ts_ms, std::memory_order_relaxed);
        self->send(st.broadcaster, atom::publish_v, std::move(s));
      },
      // Frames after a resume point up to `upto`, from a connection.
      [self](atom::history, const resume_point& from,
             uint64_t upto) -> history {
        auto& st = self->state;
        expire(st);
        return st.ring->query(from, upto);
      },
      // The latest update, from the front end.
      [self](atom::latest) -> std::optional<update> {
        return self->state.last;
      },
      // Buffered updates since a time, from the front end.
      [self](atom::updates,
             std::optional<int64_t> since_ms) -> std::vector<update> {
        auto& st = self->state;
        expire(st);
        std::vector<update> out;
        for (auto& s : st.ring->since(
                 since_ms.value_or(std::numeric_limits<int64_t>::min())))
          out.push_back(s.u);
        return out;
      },
      // Health round trip; also keeps the gauges fresh between updates.
      [self](atom::ping) -> uint64_t {
        expire(self->state);
        return self->state.ring->size();
      },
  };
}

} // namespace btcstream

#include "actors/buffer.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>

#include <algorithm>
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

using self_ptr = buffer_actor::stateful_pointer<buffer_state>;

/// Stores an update whose predecessor in the log is `prev` and publishes it
/// (counted unless `restored`: not new, but what the last run saved).
void store(self_ptr self, const update& u, uint64_t prev,
           bool restored = false) {
  auto& st = self->state;
  auto holes = st.ring->holes();
  auto held = st.ring->newest_id();
  auto s = st.ring->push(stored{u, encode_update(u), steady_now_ns(), nullptr},
                         prev);
  if (!s) {
    log(log_level::error, "buffer drops update " + std::to_string(u.id)
                              + ": id not above "
                              + std::to_string(st.ring->newest_id()));
    return;
  }
  auto& m = *st.stats;
  if (st.ring->holes() != holes) {
    m.cluster.holes.fetch_add(1, std::memory_order_relaxed);
    log(log_level::warn,
        "buffer finds a hole in the log before " + std::to_string(u.id)
            + " (its predecessor " + std::to_string(prev) + ", newest held "
            + std::to_string(held) + "): clients get a gap event");
  }
  auto out = *s;
  expire(st);
  st.last = u;
  if (!restored)
    m.events_published.fetch_add(1, std::memory_order_relaxed);
  m.last_price_usd.store(u.price, std::memory_order_relaxed);
  m.last_price_ts_ms.store(u.ts_ms, std::memory_order_relaxed);
  self->send(st.broadcaster, atom::publish_v, std::move(out));
}

/// Whether a resume point is ahead of everything held (a lagging node).
bool ahead(const buffer_state& st, const resume_point& from) {
  return from.what == resume_point::kind::after_id
         && from.id > st.ring->newest_id();
}

/// Answers the waiting queries the log has caught up with.
void answer_caught_up(buffer_state& st) {
  auto& w = st.waiting;
  auto i = std::remove_if(w.begin(), w.end(), [&](waiting_query& q) {
    if (ahead(st, q.from))
      return false;
    q.reply.deliver(st.ring->query(q.from, q.upto));
    return true;
  });
  w.erase(i, w.end());
}

} // namespace

buffer_actor::behavior_type
buffer(buffer_actor::stateful_pointer<buffer_state> self, size_t capacity,
       std::chrono::milliseconds ttl, broadcaster_actor broadcaster,
       std::shared_ptr<const wall_clock> clock, std::shared_ptr<metrics> stats,
       caf::timespan lag_wait) {
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
  st.lag_wait = lag_wait;
  self->link_to(st.broadcaster);
  return {
      // A validated update with its id, from the fetcher.
      [self](atom::publish, const update& u) {
        store(self, u, self->state.ring->newest_id());
      },
      [self](atom::restore, const update& u) {
        store(self, u, self->state.ring->newest_id(), true);
      },
      // An entry of the cluster's log, from the reader.
      [self](atom::ingest, const log_entry& e) {
        store(self, e.u, e.prev);
        answer_caught_up(self->state);
      },
      // A lagging node's wait ends: answer with what is held.
      [self](atom::wait, uint64_t key) {
        auto& st = self->state;
        auto& w = st.waiting;
        auto i = std::find_if(w.begin(), w.end(), [key](auto& q) {
          return q.key == key;
        });
        if (i == w.end())
          return;
        expire(st);
        auto h = st.ring->query(i->from, i->upto);
        // The log did not reach the id in time (the node is cut off or far
        // behind): a gap. An id no later than now is a real update that this
        // node will read later, so the client's copy of it and of everything
        // before it must not be sent again; a later one is not trusted.
        auto r = i->from.id;
        auto now_ms = st.clock->now_ms();
        if (now_ms > 0 && r <= static_cast<uint64_t>(now_ms))
          h.end_id = std::max(h.end_id, r);
        i->reply.deliver(std::move(h));
        w.erase(i);
      },
      // Frames after a resume point up to `upto`, from a connection.
      [self](atom::history, const resume_point& from,
             uint64_t upto) -> caf::result<history> {
        auto& st = self->state;
        expire(st);
        if (st.lag_wait > caf::timespan::zero() && ahead(st, from)) {
          // Another node has sent this client an id our log has not
          // reached yet: wait for it rather than report a false gap.
          auto key = ++st.next_key;
          st.waiting.push_back(
              {key, from, upto, self->make_response_promise<history>()});
          self->delayed_send(self, st.lag_wait, atom::wait_v, key);
          return st.waiting.back().reply;
        }
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

#include "actors/buffer.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>

#include <limits>

namespace btcstream {

buffer_actor::behavior_type
buffer(buffer_actor::stateful_pointer<buffer_state> self, size_t capacity,
       std::chrono::milliseconds ttl, broadcaster_actor broadcaster,
       std::shared_ptr<const wall_clock> clock) {
  if (capacity == 0 || !broadcaster || !clock) {
    self->quit(make_error(ec::invalid_argument,
                          "buffer needs capacity, broadcaster and clock"));
    return buffer_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.ring.emplace(capacity, ttl);
  st.broadcaster = std::move(broadcaster);
  st.clock = std::move(clock);
  self->link_to(st.broadcaster);
  return {
      // A validated update with its id, from the fetcher.
      [self](atom::publish, const update& u) {
        auto& st = self->state;
        st.ring->expire(st.clock->now_ms());
        stored s{u, encode_update(u)};
        if (!st.ring->push(s)) {
          log(log_level::error, "buffer drops update " + std::to_string(u.id)
                                    + ": id not above "
                                    + std::to_string(st.ring->newest_id()));
          return;
        }
        st.last = u;
        self->send(st.broadcaster, atom::publish_v, std::move(s));
      },
      // Frames after a resume point up to `upto`, from a connection.
      [self](atom::history, const resume_point& from,
             uint64_t upto) -> history {
        auto& st = self->state;
        st.ring->expire(st.clock->now_ms());
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
        st.ring->expire(st.clock->now_ms());
        std::vector<update> out;
        for (auto& s : st.ring->since(
                 since_ms.value_or(std::numeric_limits<int64_t>::min())))
          out.push_back(s.u);
        return out;
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.ring->size();
      },
  };
}

} // namespace btcstream

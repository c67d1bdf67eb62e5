#include "actors/fetcher.hpp"

#include "actors/errors.hpp"
#include "core/coindesk.hpp"
#include "core/event_id.hpp"
#include "core/log.hpp"
#include "core/retry_after.hpp"

#include <caf/all.hpp>

namespace btcstream {

namespace {

using self_ptr = fetcher_actor::stateful_pointer<fetcher_state>;

void start_request(self_ptr self) {
  auto& st = self->state;
  st.in_flight = true;
  // A weak address: a pending callback must not keep the fetcher alive.
  caf::actor_addr me = self->address();
  st.client->fetch([me](fetch_result r) {
    if (auto h = caf::actor_cast<fetcher_actor>(me))
      caf::anon_send(h, atom::fetched_v, std::move(r));
  });
}

void note_failure(fetcher_state& st, const std::string& what) {
  if (st.failures_in_row++ % 100 == 0)
    log(log_level::warn, "fetcher gets no usable answer ("
                             + std::to_string(st.failures_in_row)
                             + " in a row): " + what);
}

} // namespace

fetcher_actor::behavior_type
fetcher(self_ptr self, std::shared_ptr<upstream_client> client,
        buffer_actor buffer, std::shared_ptr<const wall_clock> clock,
        std::string instrument, caf::timespan interval) {
  if (!client || !buffer || !clock || interval <= caf::timespan::zero()) {
    self->quit(make_error(ec::invalid_argument,
                          "fetcher needs client, buffer, clock, interval"));
    return fetcher_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.client = std::move(client);
  st.buffer = std::move(buffer);
  st.clock = std::move(clock);
  st.instrument = std::move(instrument);
  st.interval = interval;
  st.next_tick = self->clock().now();
  self->link_to(st.buffer);
  self->attach_functor([c = st.client] {
    c->stop();
  });
  // The first poll goes out at once.
  self->send(self, atom::tick_v);
  return {
      // The schedule, from itself.
      [self](atom::tick) {
        auto& st = self->state;
        auto now = self->clock().now();
        // Due now; the next one is a whole interval later. Ticks that were
        // missed (a stalled scheduler) are skipped, not bursted.
        st.next_tick += st.interval;
        while (st.next_tick <= now) {
          st.next_tick += st.interval;
          ++st.skipped;
        }
        self->scheduled_send(self, st.next_tick, atom::tick_v);
        if (st.in_flight) {
          ++st.skipped;
          log(log_level::debug, "fetcher skips a tick: request in flight");
          return;
        }
        if (now < st.not_before) {
          ++st.skipped;
          return;
        }
        start_request(self);
      },
      // The outcome of one request, from the upstream client.
      [self](atom::fetched, const fetch_result& r) {
        auto& st = self->state;
        st.in_flight = false;
        if (!r.error.empty()) {
          note_failure(st, r.error);
          return;
        }
        auto parsed = parse_coindesk(r.status, r.body, st.instrument);
        if ((r.status == 429 || r.status == 503) && !r.retry_after.empty()) {
          if (auto wait
              = parse_retry_after(r.retry_after, st.clock->now_ms())) {
            st.not_before
                = self->clock().now() + std::chrono::milliseconds{*wait};
            log(log_level::warn,
                "fetcher waits " + std::to_string(*wait)
                    + " ms as the upstream's Retry-After asks");
          }
        }
        if (!parsed.price) {
          note_failure(st, std::string{to_string(parsed.error)} + " (HTTP "
                               + std::to_string(r.status) + ") "
                               + parsed.detail);
          return;
        }
        if (st.failures_in_row > 0) {
          log(log_level::info, "fetcher recovers after "
                                   + std::to_string(st.failures_in_row)
                                   + " unusable answers");
          st.failures_in_row = 0;
        }
        // Timestamps never go back either: the buffer's TTL and `since`
        // lookups rely on their order even when the wall clock steps back.
        auto now = std::max(st.clock->now_ms(), st.last_ts);
        update u{next_event_id(st.last_id, now), now, *parsed.price};
        st.last_id = u.id;
        st.last_ts = u.ts_ms;
        self->send(st.buffer, atom::publish_v, u);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.last_id;
      },
  };
}

} // namespace btcstream

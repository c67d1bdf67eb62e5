#include "actors/fetcher.hpp"

#include "actors/errors.hpp"
#include "core/coindesk.hpp"
#include "core/event_id.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace btcstream {

namespace {

using self_ptr = fetcher_actor::stateful_pointer<fetcher_state>;
using std::chrono::milliseconds;

int64_t to_ms(const fetcher_state& st, caf::actor_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t - st.origin).count();
}

caf::actor_clock::time_point from_ms(const fetcher_state& st, int64_t ms) {
  return st.origin + milliseconds{ms};
}

void skip(fetcher_state& st) {
  st.stats->upstream_skipped_ticks.fetch_add(1, std::memory_order_relaxed);
}

void start_request(self_ptr self) {
  auto& st = self->state;
  st.in_flight = true;
  st.request_started = self->clock().now();
  ++st.attempt; // any retry scheduled earlier is now stale
  // A weak address: a pending callback must not keep the fetcher alive.
  caf::actor_addr me = self->address();
  st.client->fetch([me](fetch_result r) {
    if (auto h = caf::actor_cast<fetcher_actor>(me))
      caf::anon_send(h, atom::fetched_v, std::move(r));
  });
}

/// Whether a request may start now.
bool may_start(self_ptr self) {
  auto& st = self->state;
  auto now = self->clock().now();
  return !st.in_flight && now >= st.not_before && now < st.lead_until;
}

void report_failure(fetcher_state& st, fetch_outcome o, const fetch_result& r,
                    const coindesk_result& parsed) {
  // The first failure and every 100th in a row: a dead upstream must not
  // flood the log.
  auto n = st.policy->failures();
  if (n != 1 && n % 100 != 0)
    return;
  std::string what = std::string{"fetcher gets no usable answer ("}
                     + std::to_string(n) + " in a row): " + to_string(o);
  if (r.failure != transport_error::none)
    what += ": " + r.error;
  else if (r.status != 200)
    what += " (HTTP " + std::to_string(r.status) + ") " + parsed.detail;
  else
    what += std::string{": "} + to_string(parsed.error) + " " + parsed.detail;
  log(log_level::warn, what);
}

void publish(self_ptr self, double price) {
  auto& st = self->state;
  // Timestamps never go back either: the buffer's TTL and `since` lookups
  // rely on their order even when the wall clock steps back.
  auto now = std::max(st.clock->now_ms(), st.last_ts);
  update u{next_event_id(st.last_id, now), now, price};
  st.last_id = u.id;
  st.last_ts = u.ts_ms;
  self->send(st.sink, atom::publish_v, u);
}

/// Starts a tick chain whose first tick is due at `first`.
void start_ticks(self_ptr self, caf::actor_clock::time_point first) {
  auto& st = self->state;
  st.active = true;
  ++st.epoch;
  st.next_tick = first;
  if (first <= self->clock().now())
    self->send(self, atom::tick_v, st.epoch);
  else
    self->scheduled_send(self, first, atom::tick_v, st.epoch);
}

} // namespace

fetcher_actor::behavior_type
fetcher(self_ptr self, std::shared_ptr<upstream_client> client,
        update_sink_actor sink, std::shared_ptr<const wall_clock> clock,
        std::shared_ptr<random_source> rng, std::string instrument,
        caf::timespan interval, std::shared_ptr<metrics> stats, bool active,
        update last) {
  if (!client || !sink || !clock || !rng || !stats
      || interval <= caf::timespan::zero()) {
    self->quit(make_error(ec::invalid_argument,
                          "fetcher needs client, sink, clock, rng, interval"));
    return fetcher_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.client = std::move(client);
  st.sink = std::move(sink);
  st.clock = std::move(clock);
  st.rng = std::move(rng);
  st.stats = std::move(stats);
  st.policy.emplace(std::chrono::duration_cast<milliseconds>(interval),
                    *st.rng);
  st.instrument = std::move(instrument);
  st.interval = interval;
  st.last_id = last.id;
  st.last_ts = last.ts_ms;
  st.origin = self->clock().now();
  st.next_tick = st.origin;
  st.not_before = st.origin;
  self->link_to(st.sink);
  self->attach_functor([c = st.client] {
    c->stop();
  });
  // The first poll goes out at once.
  if (active)
    start_ticks(self, st.origin);
  return {
      // The schedule, from itself.
      [self](atom::tick, uint64_t epoch) {
        auto& st = self->state;
        if (!st.active || epoch != st.epoch)
          return;
        auto now = self->clock().now();
        // Past the lease (cluster mode), the ticks are no longer this
        // node's to poll, nor to count as skipped: the bus says follow.
        bool leading = now < st.lead_until;
        // Due now; the next one is a whole interval later. Ticks that were
        // missed (a stalled scheduler) are skipped, not bursted.
        st.next_tick += st.interval;
        while (st.next_tick <= now) {
          st.next_tick += st.interval;
          if (leading)
            skip(st);
        }
        self->scheduled_send(self, st.next_tick, atom::tick_v, st.epoch);
        if (!may_start(self)) {
          if (leading)
            skip(st);
          return;
        }
        start_request(self);
      },
      // Start polling, from the bus.
      [self](atom::lead, caf::timespan delay, caf::timespan until) {
        auto& st = self->state;
        st.lead_until = caf::actor_clock::time_point{until};
        if (st.active)
          return;
        log(log_level::info, "fetcher starts polling");
        start_ticks(self, self->clock().now() + delay);
      },
      // Stop polling, from the bus.
      [self](atom::follow) {
        auto& st = self->state;
        if (!st.active)
          return;
        log(log_level::info, "fetcher stops polling");
        st.active = false;
        ++st.epoch;   // the pending tick is stale
        ++st.attempt; // so is a pending retry
      },
      // A retry after a failure, from itself.
      [self](atom::retry, uint64_t attempt) {
        if (self->state.active && attempt == self->state.attempt
            && may_start(self))
          start_request(self);
      },
      // The outcome of one request, from the upstream client.
      [self](atom::fetched, const fetch_result& r) {
        auto& st = self->state;
        st.in_flight = false;
        auto parsed = r.failure == transport_error::none
                          ? parse_coindesk(r.status, r.body, st.instrument)
                          : coindesk_result{};
        auto outcome = classify(r, parsed);
        st.stats->count_upstream(outcome);
        st.stats->upstream_request.observe(
            std::chrono::duration<double>(self->clock().now()
                                          - st.request_started)
                .count());
        auto failures_before = st.policy->failures();
        auto d = st.policy->after(outcome, r, to_ms(st, self->clock().now()),
                                  to_ms(st, st.next_tick), st.clock->now_ms());
        st.not_before = from_ms(st, d.not_before);
        if (outcome == fetch_outcome::ok) {
          if (failures_before > 0)
            log(log_level::info, "fetcher recovers after "
                                     + std::to_string(failures_before)
                                     + " failed requests");
          st.unauthorized = false;
          // A request that outlived this node's lead is not published.
          if (st.active)
            publish(self, *parsed.price);
          return;
        }
        if (d.unauthorized) {
          if (!st.unauthorized)
            log(log_level::error,
                "fetcher is refused by the upstream (HTTP "
                    + std::to_string(r.status)
                    + "): check the API key; next request in "
                    + std::to_string(
                        (d.not_before - to_ms(st, self->clock().now())) / 1000)
                    + " s");
          st.unauthorized = true;
        } else {
          report_failure(st, outcome, r, parsed);
        }
        if (d.retry_at)
          self->scheduled_send(self, from_ms(st, *d.retry_at), atom::retry_v,
                               st.attempt);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.last_id;
      },
  };
}

} // namespace btcstream

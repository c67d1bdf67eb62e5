#include "actors/bus.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace btcstream {

namespace {

using self_ptr = bus_actor::stateful_pointer<bus_state>;

int64_t steady_ns(self_ptr self) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             self->clock().now().time_since_epoch())
      .count();
}

/// Lets the fetcher poll until the lease's deadline, starting after `delay`
/// if it is stopped.
void extend(self_ptr self, std::chrono::milliseconds delay) {
  auto& st = self->state;
  if (st.fetcher)
    self->send(st.fetcher, atom::lead_v, caf::timespan{delay},
               caf::timespan{st.lease->deadline_ns()});
}

/// Acts on a change of the lease: start or stop the fetcher.
void apply(self_ptr self, lease_view::change c) {
  auto& st = self->state;
  auto& m = st.stats->cluster;
  switch (c) {
  case lease_view::change::none:
    return;
  case lease_view::change::acquired: {
    m.leader.store(1, std::memory_order_relaxed);
    m.lease_acquisitions.fetch_add(1, std::memory_order_relaxed);
    // At most one poll per interval across the cluster: the first one waits
    // for an interval after the newest entry in the log.
    auto wait_ms = std::clamp<int64_t>(
        st.newest.u.ts_ms + st.opts.interval.count() - st.clock->now_ms(), 0,
        st.opts.interval.count());
    log(log_level::info,
        "bus leads (lease token " + std::to_string(st.lease->token())
            + "): first poll in " + std::to_string(wait_ms) + " ms");
    extend(self, std::chrono::milliseconds{wait_ms});
    return;
  }
  case lease_view::change::lost:
    m.leader.store(0, std::memory_order_relaxed);
    m.lease_losses.fetch_add(1, std::memory_order_relaxed);
    log(log_level::warn,
        "bus stops leading: the lease is "
            + (st.lease->holder().empty() ? std::string{"not renewed in time"}
                                          : "held by " + st.lease->holder()));
    if (st.fetcher)
      self->send(st.fetcher, atom::follow_v);
    return;
  }
}

/// Sends a lease request unless one is in flight.
void ask_lease(self_ptr self) {
  auto& st = self->state;
  if (st.asking || st.released)
    return;
  st.asking = true;
  auto sent = steady_ns(self);
  caf::actor_addr me = self->address();
  st.log->lease(st.opts.node, st.lease->token(), st.opts.lease_ttl,
                [me, sent](lease_reply r) {
                  if (auto h = caf::actor_cast<bus_actor>(me))
                    caf::anon_send(h, atom::lease_v, sent, std::move(r));
                });
}

} // namespace

bus_actor::behavior_type bus(self_ptr self, std::shared_ptr<cluster_log> redis,
                             std::shared_ptr<const wall_clock> clock,
                             std::shared_ptr<metrics> stats, bus_options opts) {
  if (!redis || !clock || !stats || opts.node.empty()
      || opts.lease_ttl.count() < 3 || opts.interval.count() <= 0) {
    self->quit(make_error(ec::invalid_argument,
                          "bus needs log, clock, stats, node, lease TTL"));
    return bus_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.log = std::move(redis);
  st.clock = std::move(clock);
  st.stats = std::move(stats);
  st.opts = std::move(opts);
  st.lease.emplace(st.opts.node, st.opts.lease_ttl);
  self->attach_functor([l = st.log] {
    l->stop();
  });
  self->send(self, atom::tick_v);
  return {
      // A validated update, from the fetcher.
      [self](atom::publish, const update& u) {
        auto& st = self->state;
        if (!st.lease->leading())
          return; // polled before a `follow` arrived: not ours to publish
        // Ids stay above what this node has seen even when Redis came back
        // empty (the floor); the log raises them above its newest.
        auto floor = std::max(u.id, st.newest.u.id + 1);
        caf::actor_addr me = self->address();
        st.log->append(st.opts.node, st.lease->token(), u, floor,
                       st.opts.max_len, st.opts.ttl, [me](append_reply r) {
                         if (auto h = caf::actor_cast<bus_actor>(me))
                           caf::anon_send(h, atom::appended_v, std::move(r));
                       });
      },
      // The fetcher to drive, from the wiring.
      [self](atom::poller, fetcher_actor f) {
        self->state.fetcher = std::move(f);
        // The lease may have come first.
        if (self->state.lease->leading())
          extend(self, std::chrono::milliseconds{0});
      },
      // The lease timer, from itself.
      [self](atom::tick) {
        auto& st = self->state;
        apply(self, st.lease->on_time(steady_ns(self)));
        ask_lease(self);
        // A leader renews every third of the TTL; a follower asks at least
        // once an interval too, so that it takes over within --lease-ttl +
        // one interval of the leader's last renewal.
        auto period = st.lease->period();
        if (!st.lease->leading())
          period = std::min<caf::timespan>(period, st.opts.interval);
        self->delayed_send(self, period, atom::tick_v);
      },
      // The lease as Redis holds it, from the log's callback.
      [self](atom::lease, int64_t sent, const lease_reply& r) {
        auto& st = self->state;
        st.asking = false;
        if (st.released)
          return; // a renewal sent before the release: not leading again
        if (r.failure != log_failure::none) {
          st.stats->cluster.count_error(r.failure == log_failure::connect
                                            ? redis_op::connect
                                            : redis_op::lease);
          log(log_level::debug, "bus cannot reach the lease: " + r.error);
        }
        auto c = st.lease->on_reply(sent, steady_ns(self), r);
        apply(self, c);
        if (c == lease_view::change::none && st.lease->leading())
          extend(self,
                 std::chrono::milliseconds{0}); // renewed: a later deadline
      },
      // The outcome of an append, from the log's callback.
      [self](atom::appended, const append_reply& r) {
        auto& st = self->state;
        auto& m = st.stats->cluster;
        if (r.failure == log_failure::none && !r.fenced) {
          m.count_append(append_result::ok);
          st.append_failures = 0;
          return;
        }
        if (r.fenced) {
          m.count_append(append_result::fenced);
          log(log_level::warn, "bus: append fenced: this node no longer "
                               "holds the lease; the update is dropped");
          // Redis says we are not the holder: stop at once.
          apply(self, st.lease->on_fenced());
          return;
        }
        m.count_append(append_result::error);
        m.count_error(r.failure == log_failure::connect ? redis_op::connect
                                                        : redis_op::append);
        if (++st.append_failures == 1 || st.append_failures % 100 == 0)
          log(log_level::warn, "bus cannot append an update ("
                                   + std::to_string(st.append_failures)
                                   + " in a row): " + r.error);
      },
      // The newest entry read from the log, from the reader.
      [self](atom::ingest, const log_entry& e) {
        auto& st = self->state;
        if (e.u.id > st.newest.u.id)
          st.newest = e;
      },
      // The lease holder as last seen, from the front end.
      [self](atom::leader) -> std::string {
        return self->state.lease->holder();
      },
      // A clean shutdown, from the wiring.
      [self](atom::release) -> caf::result<bool> {
        auto& st = self->state;
        if (st.released)
          return false;
        st.released = true;
        // The fetcher stops first; appends already sent are ahead of the
        // release on the same connection, so they land before it.
        auto token = st.lease->token();
        // Not a loss (no lease_losses, no warning): this node steps down.
        if (st.lease->on_fenced() != lease_view::change::lost || token == 0)
          return false;
        st.stats->cluster.leader.store(0, std::memory_order_relaxed);
        if (st.fetcher)
          self->send(st.fetcher, atom::follow_v);
        st.release_answer = self->make_response_promise<bool>();
        caf::actor_addr me = self->address();
        st.log->release(st.opts.node, token, [me](release_reply r) {
          if (auto h = caf::actor_cast<bus_actor>(me))
            caf::anon_send(h, atom::release_v, std::move(r));
        });
        return st.release_answer;
      },
      // The outcome of the release, from the log's callback.
      [self](atom::release, const release_reply& r) {
        auto& st = self->state;
        if (r.failure != log_failure::none) {
          st.stats->cluster.count_error(r.failure == log_failure::connect
                                            ? redis_op::connect
                                            : redis_op::lease);
          log(log_level::warn, "bus cannot release the lease: " + r.error
                                   + "; another node takes it on expiry");
        } else {
          log(log_level::info,
              r.released ? "bus released the lease"
                         : "bus: the lease was no longer ours to release");
        }
        st.release_answer.deliver(r.failure == log_failure::none && r.released);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.lease->leading() ? 1 : 0;
      },
  };
}

} // namespace btcstream

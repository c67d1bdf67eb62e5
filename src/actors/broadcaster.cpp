#include "actors/broadcaster.hpp"

#include "actors/element_pool.hpp"
#include "actors/errors.hpp"
#include "actors/scheduler.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace btcstream {

namespace {

/// `anon_send` of one prebuilt message (which typed sends cannot take) to
/// every subscriber, in mailbox elements from this thread's pool.
/// Anonymous: a sender would cost two atomic updates of the shard's
/// reference count per receiver, and no receiver replies. On one of
/// btcstream's workers the receivers it wakes run right after, on this
/// worker (run_woken_here).
void send_to_all(caf::local_actor* self,
                 const std::vector<connection_actor>& subs,
                 const caf::message& msg) {
  auto send = [&](caf::execution_unit* unit) {
    element_pool::of_this_thread().make_each(
        caf::make_message_id(), msg, subs.size(),
        [&](size_t i, caf::mailbox_element_ptr e) {
          caf::actor_cast<caf::abstract_actor*>(subs[i])->enqueue(std::move(e),
                                                                  unit);
        });
  };
  if (!on_scheduler_worker()) { // the test coordinator: it runs them
    send(self->context());
    return;
  }
  run_woken_here woken{self->context(), subs.size()};
  send(&woken);
  woken.run_all();
}

/// One shard: its share of the subscribers. (Its index is an argument
/// because CAF 0.17 binds a null pointer for a spawn without one, which
/// UBSan reports.)
shard_actor::behavior_type
shard(shard_actor::stateful_pointer<shard_state> self, size_t /* index */) {
  set_default_handlers(self);
  // The subscribers end with the shard. They do not monitor it: a monitor
  // is an entry in the monitored actor's list, and each of 10,000
  // connections ending at once removed its own by a linear search of that
  // list, O(n^2) in all. The message queues behind the updates already
  // sent to a connection, so those still reach its client.
  self->attach_functor(
      [subs = self->state.subscribers](const caf::error& reason) {
        for (auto& c : *subs)
          caf::anon_send(c, atom::ended_v, reason);
      });
  return {
      [self](atom::publish, const stored& s) {
        // One message for all: CAF messages are immutable and reference
        // counted, so each receiver gets only its own mailbox element.
        send_to_all(self, *self->state.subscribers,
                    caf::make_message(atom::live_v, s));
      },
      [self](atom::subscribe, const connection_actor& c) {
        self->state.subscribers->push_back(c);
      },
      [self](atom::forget, const caf::actor_addr& who) {
        auto& subs = *self->state.subscribers;
        auto i = std::find_if(subs.begin(), subs.end(), [&](const auto& c) {
          return c.address() == who;
        });
        if (i == subs.end())
          return;
        *i = std::move(subs.back());
        subs.pop_back();
      },
      [self](atom::heartbeat) {
        send_to_all(self, *self->state.subscribers,
                    caf::make_message(atom::heartbeat_v));
      },
      [self](atom::ended, const caf::error& reason) {
        self->quit(reason);
      },
  };
}

void forget(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            const caf::actor_addr& who) {
  auto& st = self->state;
  auto i = st.index.find(who);
  if (i == st.index.end())
    return;
  auto s = i->second;
  st.index.erase(i);
  auto& slot = (*st.shards)[s];
  self->send(slot, atom::forget_v, who);
  if (st.fill[s]-- == subscribers_per_shard)
    st.open.push_back(s);
  if (st.fill[s] == 0) {
    // Its last subscriber left: it ends (normally, after the forget), and
    // the next subscriber to get this place gets a new shard.
    self->send(slot, atom::ended_v, caf::error{});
    slot = shard_actor{};
  }
}

/// The shard that takes the next subscriber: one with room, else a new one.
size_t
shard_with_room(broadcaster_actor::stateful_pointer<broadcaster_state> self) {
  auto& st = self->state;
  if (st.open.empty()) {
    st.open.push_back(st.shards->size());
    st.fill.push_back(0);
    st.shards->emplace_back();
  }
  auto s = st.open.back();
  auto& slot = (*st.shards)[s];
  if (!slot)
    // Linked: a shard that fails takes the broadcaster (a core actor) down.
    // Hidden: an internal helper, not counted among the running actors
    // (btcstream_live_objects), and not waited for at shutdown.
    slot = self->spawn<caf::linked + caf::hidden>(shard, s);
  if (++st.fill[s] == subscribers_per_shard)
    st.open.pop_back();
  return s;
}

} // namespace

broadcaster_actor::behavior_type
broadcaster(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            caf::timespan heartbeat, std::shared_ptr<metrics> stats) {
  if (heartbeat <= caf::timespan::zero() || !stats) {
    self->quit(make_error(ec::invalid_argument, "heartbeat must be > 0"));
    return broadcaster_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.heartbeat = heartbeat;
  st.stats = std::move(stats);
  st.last_traffic = self->clock().now();
  self->set_down_handler([self](const caf::down_msg& msg) {
    forget(self, msg.source);
  });
  // On any end, normal too (which links do not pass on): the shards end
  // with the same reason, after the updates sent to them before, and end
  // their subscribers.
  self->attach_functor([shards = st.shards](const caf::error& reason) {
    for (auto& s : *shards)
      if (s)
        caf::anon_send(s, atom::ended_v, reason);
  });
  self->scheduled_send(self, st.last_traffic + heartbeat, atom::heartbeat_v);
  return {
      // A newly stored update, from the buffer.
      [self](atom::publish, const stored& s) {
        auto& st = self->state;
        st.last_forwarded = s.u.id;
        st.last_traffic = self->clock().now();
        if (st.index.empty())
          return;
        // One probe per fan-out, counted down by every subscriber: each
        // shard gets this update after the subscribers it has now, and
        // before the ones it gets later.
        stored out = s;
        out.probe = std::make_shared<fanout_probe>(st.index.size(), s.stored_ns,
                                                   st.stats);
        auto msg = caf::make_message(atom::publish_v, std::move(out));
        for (size_t i = 0; i < st.shards->size(); ++i)
          if (st.fill[i] > 0)
            caf::actor_cast<caf::abstract_actor*>((*st.shards)[i])
                ->enqueue(caf::make_mailbox_element(
                              nullptr, caf::make_message_id(), {}, msg),
                          self->context());
      },
      // Subscribes a connection, from the connection itself.
      [self](atom::subscribe, const connection_actor& c) -> uint64_t {
        auto& st = self->state;
        if (c && st.index.count(c.address()) == 0) {
          self->monitor(c);
          auto s = shard_with_room(self);
          st.index.emplace(c.address(), s);
          self->send((*st.shards)[s], atom::subscribe_v, c);
        }
        return st.last_forwarded;
      },
      // The heartbeat timer, from itself: fires at last_traffic + heartbeat.
      [self](atom::heartbeat) {
        auto& st = self->state;
        auto now = self->clock().now();
        if (now - st.last_traffic >= st.heartbeat) {
          for (size_t i = 0; i < st.shards->size(); ++i)
            if (st.fill[i] > 0)
              self->send((*st.shards)[i], atom::heartbeat_v);
          st.last_traffic = now;
        }
        self->scheduled_send(self, st.last_traffic + st.heartbeat,
                             atom::heartbeat_v);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.index.size();
      },
  };
}

} // namespace btcstream

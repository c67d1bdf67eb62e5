#include "actors/broadcaster.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

namespace btcstream {

namespace {

void forget(broadcaster_state& st, const caf::actor_addr& who) {
  auto i = st.index.find(who);
  if (i == st.index.end())
    return;
  auto pos = i->second;
  st.index.erase(i);
  auto& subs = *st.subscribers;
  if (pos + 1 != subs.size()) {
    subs[pos] = std::move(subs.back());
    st.index[subs[pos].address()] = pos;
  }
  subs.pop_back();
}

/// `anon_send(c, atom::live_v, stored)` to every subscriber, with one
/// prebuilt message, which typed sends cannot take, in mailbox elements
/// from `pool`. `msg` must hold exactly (atom::live, stored), the
/// connection interface's live message. Anonymous: a sender would cost two
/// atomic updates of the broadcaster's reference count per receiver, one
/// on each side of a core boundary, and the live handler never replies.
void send_to_all(caf::local_actor* self, element_pool& pool,
                 const std::vector<connection_actor>& subs,
                 const caf::message& msg) {
  pool.make_each(caf::make_message_id(), msg, subs.size(),
                 [&](size_t i, caf::mailbox_element_ptr e) {
                   caf::actor_cast<caf::abstract_actor*>(subs[i])->enqueue(
                       std::move(e), self->context());
                 });
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
  self->state.heartbeat = heartbeat;
  self->state.stats = std::move(stats);
  self->state.last_traffic = self->clock().now();
  self->set_down_handler([self](const caf::down_msg& msg) {
    forget(self->state, msg.source);
  });
  // The subscribers end with the broadcaster. They do not monitor it: a
  // monitor is an entry in the monitored actor's list, and each of 10,000
  // connections ending at once removed its own by a linear search of that
  // list, O(n^2) in all. The message queues behind the updates already sent
  // to a connection, so those still reach its client.
  self->attach_functor(
      [subs = self->state.subscribers](const caf::error& reason) {
        for (auto& c : *subs)
          caf::anon_send(c, atom::ended_v, reason);
      });
  self->scheduled_send(self, self->state.last_traffic + heartbeat,
                       atom::heartbeat_v);
  return {
      // A newly stored update, from the buffer.
      [self](atom::publish, const stored& s) {
        auto& st = self->state;
        st.last_forwarded = s.u.id;
        st.last_traffic = self->clock().now();
        if (st.subscribers->empty())
          return;
        // One probe per fan-out, and one message for every receiver: CAF
        // messages are immutable and reference counted, so each receiver
        // gets only its own mailbox element, not a copy of the update.
        stored out = s;
        out.probe = std::make_shared<fanout_probe>(st.subscribers->size(),
                                                   s.stored_ns, st.stats);
        auto msg = caf::make_message(atom::live_v, std::move(out));
        send_to_all(self, st.pool, *st.subscribers, msg);
      },
      // Subscribes a connection, from the connection itself.
      [self](atom::subscribe, const connection_actor& c) -> uint64_t {
        auto& st = self->state;
        if (c && st.index.count(c.address()) == 0) {
          self->monitor(c);
          st.index.emplace(c.address(), st.subscribers->size());
          st.subscribers->push_back(c);
        }
        return st.last_forwarded;
      },
      // The heartbeat timer, from itself: fires at last_traffic + heartbeat.
      [self](atom::heartbeat) {
        auto& st = self->state;
        auto now = self->clock().now();
        if (now - st.last_traffic >= st.heartbeat) {
          for (auto& c : *st.subscribers)
            self->send(c, atom::heartbeat_v);
          st.last_traffic = now;
        }
        self->scheduled_send(self, st.last_traffic + st.heartbeat,
                             atom::heartbeat_v);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.subscribers->size();
      },
  };
}

} // namespace btcstream

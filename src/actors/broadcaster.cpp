#include "actors/broadcaster.hpp"

#include "actors/errors.hpp"
#include "actors/scheduler.hpp"

#include <caf/all.hpp>

namespace btcstream {

namespace {

void forget(shard_state& st, const caf::actor_addr& who) {
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
/// atomic updates of the shard's reference count per receiver, one on
/// each side of a core boundary, and the live handler never replies.
void send_to_all(caf::local_actor* self, element_pool& pool,
                 const std::vector<connection_actor>& subs,
                 const caf::message& msg) {
  pool.make_each(caf::make_message_id(), msg, subs.size(),
                 [&](size_t i, caf::mailbox_element_ptr e) {
                   caf::actor_cast<caf::abstract_actor*>(subs[i])->enqueue(
                       std::move(e), self->context());
                 });
}

/// One shard: its share of the subscribers. (Its index is an argument
/// because CAF 0.17 binds a null pointer for a spawn without one, which
/// UBSan reports.)
shard_actor::behavior_type
shard(shard_actor::stateful_pointer<shard_state> self, size_t /* index */) {
  set_default_handlers(self);
  self->set_down_handler([self](const caf::down_msg& msg) {
    forget(self->state, msg.source);
  });
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
        auto& st = self->state;
        if (s.probe)
          s.probe->expand(st.subscribers->size());
        if (st.subscribers->empty())
          return;
        // One message for every receiver of this shard: CAF messages are
        // immutable and reference counted, so each receiver gets only its
        // own mailbox element, not a copy of the update.
        auto msg = caf::make_message(atom::live_v, s);
        send_to_all(self, st.pool, *st.subscribers, msg);
      },
      [self](atom::subscribe, const connection_actor& c) {
        auto& st = self->state;
        if (st.index.count(c.address()) == 0) {
          self->monitor(c);
          st.index.emplace(c.address(), st.subscribers->size());
          st.subscribers->push_back(c);
        }
      },
      [self](atom::heartbeat) {
        for (auto& c : *self->state.subscribers)
          self->send(c, atom::heartbeat_v);
      },
      [self](atom::ended, const caf::error& reason) {
        self->quit(reason);
      },
      [self](atom::ping) -> uint64_t {
        return self->state.subscribers->size();
      },
  };
}

/// Puts `what` into `shard`'s mailbox as if `unit` had sent it: a shard
/// that waits is then scheduled on `unit` (a worker: see scheduler.hpp),
/// or, without one, where the broadcaster runs.
void enqueue_on(caf::local_actor* self, const shard_actor& shard,
                caf::execution_unit* unit, stored what) {
  caf::actor_cast<caf::abstract_actor*>(shard)->enqueue(
      caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                atom::publish_v, std::move(what)),
      unit ? unit : self->context());
}

/// The answer to `ping`: the shards' counts, summed.
struct ping_sum {
  caf::typed_response_promise<uint64_t> promise;
  size_t left;
  uint64_t sum = 0;
  bool failed = false;
};

} // namespace

broadcaster_actor::behavior_type
broadcaster(broadcaster_actor::stateful_pointer<broadcaster_state> self,
            caf::timespan heartbeat, std::shared_ptr<metrics> stats,
            size_t shards) {
  if (heartbeat <= caf::timespan::zero() || !stats || shards == 0) {
    self->quit(make_error(ec::invalid_argument,
                          "heartbeat must be > 0, shards > 0, stats given"));
    return broadcaster_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.heartbeat = heartbeat;
  st.stats = std::move(stats);
  st.last_traffic = self->clock().now();
  // Linked: a shard that fails takes the broadcaster (a core actor) down.
  for (size_t i = 0; i < shards; ++i)
    st.shards.push_back(self->spawn<caf::linked>(shard, i));
  // On any end, normal too (which links do not pass on): the shards end
  // with the same reason, after the updates sent to them before.
  self->attach_functor([shards = st.shards](const caf::error& reason) {
    for (auto& s : shards)
      caf::anon_send(s, atom::ended_v, reason);
  });
  self->scheduled_send(self, st.last_traffic + heartbeat, atom::heartbeat_v);
  return {
      // A newly stored update, from the buffer.
      [self](atom::publish, const stored& s) {
        auto& st = self->state;
        st.last_forwarded = s.u.id;
        st.last_traffic = self->clock().now();
        // One probe per fan-out; each shard counts in its receivers.
        stored out = s;
        out.probe
            = fanout_probe::of_parts(st.shards.size(), s.stored_ns, st.stats);
        for (size_t i = 0; i < st.shards.size(); ++i)
          enqueue_on(self, st.shards[i],
                     scheduler_worker(self->home_system(), i), out);
      },
      // Subscribes a connection, from the connection itself. Its shard
      // gets it before any update sent after this reply.
      [self](atom::subscribe, const connection_actor& c) -> uint64_t {
        auto& st = self->state;
        if (c)
          self->send(st.shards[(c.id() / 64) % st.shards.size()], atom::subscribe_v,
                     c);
        return st.last_forwarded;
      },
      // The heartbeat timer, from itself: fires at last_traffic + heartbeat.
      [self](atom::heartbeat) {
        auto& st = self->state;
        auto now = self->clock().now();
        if (now - st.last_traffic >= st.heartbeat) {
          for (auto& s : st.shards)
            self->send(s, atom::heartbeat_v);
          st.last_traffic = now;
        }
        self->scheduled_send(self, st.last_traffic + st.heartbeat,
                             atom::heartbeat_v);
      },
      // Health round trip: the subscribers of all shards.
      [self](atom::ping) -> caf::typed_response_promise<uint64_t> {
        auto& st = self->state;
        auto sum = std::make_shared<ping_sum>(ping_sum{
            self->make_response_promise<uint64_t>(), st.shards.size()});
        for (auto& s : st.shards)
          self->request(s, caf::infinite, atom::ping_v)
              .then(
                  [sum](uint64_t n) {
                    sum->sum += n;
                    if (--sum->left == 0 && !sum->failed)
                      sum->promise.deliver(sum->sum);
                  },
                  [sum](caf::error& e) {
                    if (!std::exchange(sum->failed, true))
                      sum->promise.deliver(std::move(e));
                  });
        return sum->promise;
      },
  };
}

} // namespace btcstream

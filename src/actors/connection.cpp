#include "actors/connection.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>

namespace btcstream {

namespace {

/// The exit reason of a stream that reached --max-stream-age.
const caf::error& retired() {
  static const caf::error e = make_error(ec::stream_aged, "max stream age");
  return e;
}

/// The execution unit of a connection actor whose sink runs jobs: the
/// actor's turns are the sink's jobs, and what else it schedules (the actors
/// it sends to) goes to CAF's scheduler. CAF schedules an actor with the
/// execution unit it is given, i.e. the sender's, so the actor below passes
/// this one instead, whoever sends.
class sink_unit final : public caf::execution_unit, public sink_job {
public:
  sink_unit(caf::actor_system& sys, caf::resumable* owner,
            std::shared_ptr<frame_sink> sink)
      : caf::execution_unit(&sys), owner_(owner), sink_(std::move(sink)) {}

  // With a reference to the job, which its turn or CAF's scheduler keeps.
  void exec_later(caf::resumable* job) override {
    if (job == owner_)
      sink_->schedule(*this);
    else
      system().scheduler().enqueue(job);
  }

  void run() override {
    auto* job = owner_;
    switch (job->resume(this, system().scheduler().max_throughput())) {
    case caf::resumable::resume_later:
      sink_->schedule(*this);
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      // May destroy the actor, and this unit with it.
      intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit:
      break;
    }
  }

  // The session or its I/O threads are gone: on to CAF's scheduler, with
  // the reference.
  void drop() override { system().scheduler().enqueue(owner_); }

private:
  caf::resumable* owner_;
  std::shared_ptr<frame_sink> sink_;
};

/// `connection`, scheduled on its sink.
class connection_on_sink final
    : public caf::stateful_actor<connection_state, connection_actor::base> {
public:
  using super = caf::stateful_actor<connection_state, connection_actor::base>;

  connection_on_sink(caf::actor_config& cfg, std::shared_ptr<frame_sink> sink,
                     resume_point from, broadcaster_actor broadcaster,
                     buffer_actor buffer, size_t max_held,
                     std::shared_ptr<metrics> stats, caf::timespan max_age)
      : super(cfg),
        unit_(home_system(), this, sink),
        sink_(std::move(sink)),
        from_(std::move(from)),
        broadcaster_(std::move(broadcaster)),
        buffer_(std::move(buffer)),
        max_held_(max_held),
        stats_(std::move(stats)),
        max_age_(max_age) {}

  using super::enqueue;

  void enqueue(caf::mailbox_element_ptr ptr, caf::execution_unit*) override {
    super::enqueue(std::move(ptr), &unit_);
  }

  void launch(caf::execution_unit*, bool lazy, bool hide) override {
    super::launch(&unit_, lazy, hide);
  }

  behavior_type make_behavior() override {
    return connection(this, std::move(sink_), std::move(from_),
                      std::exchange(broadcaster_, {}),
                      std::exchange(buffer_, {}), max_held_, std::move(stats_),
                      max_age_);
  }

private:
  sink_unit unit_;
  std::shared_ptr<frame_sink> sink_;
  resume_point from_;
  broadcaster_actor broadcaster_;
  buffer_actor buffer_;
  size_t max_held_;
  std::shared_ptr<metrics> stats_;
  caf::timespan max_age_;
};

void give_up(connection_actor::stateful_pointer<connection_state> self,
             const caf::error& err, const char* step) {
  log(log_level::warn, std::string{"connection ends: "} + step
                           + " failed: " + self->system().render(err));
  self->quit(err);
}

} // namespace

connection_actor::behavior_type
connection(connection_actor::stateful_pointer<connection_state> self,
           std::shared_ptr<frame_sink> sink, resume_point from,
           broadcaster_actor broadcaster, buffer_actor buffer, size_t max_held,
           std::shared_ptr<metrics> stats, caf::timespan max_age) {
  if (!sink || !broadcaster || !buffer || max_held == 0 || !stats) {
    if (sink)
      sink->close(end_cause::error);
    self->quit(make_error(ec::invalid_argument,
                          "connection needs sink, broadcaster and buffer"));
    return connection_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.sink = sink;
  st.resume.emplace(from.given);
  st.max_held = max_held;
  st.stats = stats;
  st.resuming = from.what == resume_point::kind::after_id
                || from.what == resume_point::kind::since;
  stats->connection_actors.fetch_add(1, std::memory_order_relaxed);
  // Whatever ends this actor ends the stream; the reason tells the session
  // what to count.
  self->attach_functor([sink, stats](const caf::error& reason) {
    stats->connection_actors.fetch_sub(1, std::memory_order_relaxed);
    if (!reason || reason == caf::exit_reason::normal)
      sink->close(end_cause::done);
    else if (reason == caf::exit_reason::user_shutdown)
      sink->close(end_cause::shutdown);
    else if (reason == retired())
      sink->close(end_cause::max_age);
    else
      sink->close(end_cause::error);
  });
  if (max_age > caf::timespan::zero())
    self->delayed_send(self, max_age, atom::retire_v);
  auto me = caf::actor_cast<connection_actor>(self);
  // No request timeout: CAF 0.17 never cancels one when the answer comes,
  // so each would still fire later as a message to every connection (two
  // per connect; after 10,000 connects, 9 % of the server's CPU in the
  // seconds they fire, docs/performance.md). Nothing is lost: the
  // broadcaster and the buffer answer at once, a request to a dead one
  // fails at once, and a core actor's death ends the process anyway.
  self->request(broadcaster, caf::infinite, atom::subscribe_v, me)
      .then(
          [self, buffer, from](uint64_t upto) {
            self->request(buffer, caf::infinite, atom::history_v, from, upto)
                .then(
                    [self](const history& h) {
                      auto& m = *self->state.stats;
                      // The latest update a fresh client gets first is not
                      // a replay: only resumes count.
                      if (self->state.resuming)
                        m.replayed_events.fetch_add(h.frames.size(),
                                                    std::memory_order_relaxed);
                      auto& resume = *self->state.resume;
                      auto gaps = resume.gaps();
                      auto out = resume.on_history(h);
                      m.gap_events.fetch_add(resume.gaps() - gaps,
                                             std::memory_order_relaxed);
                      if (!out.empty())
                        self->state.sink->replay(std::move(out));
                    },
                    [self](caf::error& err) {
                      give_up(self, err, "history");
                    });
          },
          [self](caf::error& err) {
            give_up(self, err, "subscribe");
          });
  return {
      // A stored update, from the broadcaster.
      [self](atom::live, const stored& s) {
        auto& st = self->state;
        auto f = st.resume->on_live(s);
        if (f) {
          if (auto gap = st.resume->take_gap()) {
            st.stats->gap_events.fetch_add(1, std::memory_order_relaxed);
            st.sink->deliver(std::move(gap), 0);
          }
          st.sink->deliver(std::move(*f), s.stored_ns);
        }
        if (s.probe)
          s.probe->handed();
        if (!f && st.resume->held() > st.max_held) {
          log(log_level::warn, "connection drops a client: history reply late");
          self->quit(make_error(ec::peer_unavailable, "history reply late"));
        }
      },
      // No traffic for --heartbeat, from the broadcaster.
      [self](atom::heartbeat) {
        self->state.sink->deliver(heartbeat_frame(), 0);
      },
      // The session ended, from the HTTP session.
      [self](atom::session, session_state) {
        self->quit();
      },
      // The stream reached its age, from itself.
      [self](atom::retire) {
        self->quit(retired());
      },
      // The broadcaster ended, which ends the stream (it does not monitor
      // the broadcaster: see there).
      [self](atom::ended, const caf::error& reason) {
        self->quit(reason ? reason : caf::exit_reason::normal);
      },
  };
}

connection_actor
spawn_connection(caf::actor_system& sys, std::shared_ptr<frame_sink> sink,
                 resume_point from, broadcaster_actor broadcaster,
                 buffer_actor buffer, size_t max_held,
                 std::shared_ptr<metrics> stats, caf::timespan max_age) {
  if (sink && sink->runs_jobs())
    return sys.spawn<connection_on_sink>(
        std::move(sink), std::move(from), std::move(broadcaster),
        std::move(buffer), max_held, std::move(stats), max_age);
  return sys.spawn(connection, std::move(sink), std::move(from),
                   std::move(broadcaster), std::move(buffer), max_held,
                   std::move(stats), max_age);
}

} // namespace btcstream

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
  self->attach_functor([weak = st.sink, stats](const caf::error& reason) {
    stats->connection_actors.fetch_sub(1, std::memory_order_relaxed);
    auto sink = weak.lock();
    if (!sink)
      return;
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
                      auto sink = self->state.sink.lock();
                      if (sink && !out.empty())
                        sink->replay(std::move(out));
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
        const auto* f = st.resume->on_live(s);
        if (f) {
          auto gap = st.resume->take_gap();
          if (auto sink = st.sink.lock()) {
            if (gap) {
              st.stats->gap_events.fetch_add(1, std::memory_order_relaxed);
              sink->deliver(gap, 0);
            }
            sink->deliver(*f, s.stored_ns);
          }
        }
        if (s.probe)
          fanout_probe::handed(s.probe);
        if (!f && st.resume->held() > st.max_held) {
          log(log_level::warn, "connection drops a client: history reply late");
          self->quit(make_error(ec::peer_unavailable, "history reply late"));
        }
      },
      // No traffic for --heartbeat, from the broadcaster.
      [self](atom::heartbeat) {
        if (auto sink = self->state.sink.lock())
          sink->deliver(heartbeat_frame(), 0);
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

} // namespace btcstream

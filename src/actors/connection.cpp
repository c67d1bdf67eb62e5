#include "actors/connection.hpp"

#include "actors/errors.hpp"
#include "actors/inbox_actor.hpp"
#include "core/log.hpp"
#include "core/seam.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>

#include <exception>
#include <string>
#include <utility>

namespace btcstream {

namespace {

/// The exit reason of a stream that reached --max-stream-age.
const caf::error& retired() {
  static const caf::error e = make_error(ec::stream_aged, "max stream age");
  return e;
}

/// What the session counts for a stream whose actor ended for `reason`.
end_cause cause_of(const caf::error& reason) {
  if (!reason || reason == caf::exit_reason::normal)
    return end_cause::done;
  if (reason == caf::exit_reason::user_shutdown)
    return end_cause::shutdown;
  if (reason == retired())
    return end_cause::max_age;
  return end_cause::error;
}

/// One SSE client (connection.hpp).
class connection final : public inbox_actor<connection> {
public:
  connection(caf::actor_config& cfg, std::shared_ptr<frame_sink> sink,
             resume_point from, broadcaster_actor broadcaster,
             buffer_actor buffer, size_t max_held,
             std::shared_ptr<metrics> stats)
      : inbox_actor(cfg),
        sink_(sink),
        resume_(from.given),
        stats_(std::move(stats)),
        max_held_(max_held),
        resuming_(from.what == resume_point::kind::after_id
                  || from.what == resume_point::kind::since),
        from_(std::move(from)),
        broadcaster_(std::move(broadcaster)),
        buffer_(std::move(buffer)) {}

  /// Once, right after it is made: subscribes, or ends at once on invalid
  /// arguments.
  void start(caf::timespan max_age) {
    if (sink_.expired() || !broadcaster_ || !buffer_ || max_held_ == 0
        || !stats_) {
      quit(make_error(ec::invalid_argument,
                      "connection needs sink, broadcaster and buffer"),
           nullptr);
      return;
    }
    register_at_system();
    stats_->connection_actors.fetch_add(1, std::memory_order_relaxed);
    counted_ = true;
    if (max_age > caf::timespan::zero()) {
      auto& clock = home_system().clock();
      clock.schedule_message(
          clock.now() + max_age, caf::strong_actor_ptr{ctrl()},
          caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                    atom::retire_v));
    }
    // No request timeout: CAF 0.17 never cancels one when the answer comes,
    // so each would still fire later as a message to every connection (two
    // per connect; after 10,000 connects, 9 % of the server's CPU in the
    // seconds they fire, docs/performance.md). Nothing is lost: the
    // broadcaster and the buffer answer at once, a request to a dead one
    // fails at once, and a core actor's death ends the process anyway.
    ask(broadcaster_, nullptr, atom::subscribe_v,
        caf::actor_cast<connection_actor>(
            static_cast<caf::abstract_actor*>(this)));
  }

  const char* name() const override { return "connection"; }

  /// Its last reference went without an end (nobody holds it any more):
  /// ends it now, as CAF's actors do, so that its sink is closed.
  void on_destroy() override {
    if (!getf(is_cleaned_up_flag))
      quit(caf::exit_reason::unreachable, nullptr);
    monitorable_actor::on_destroy();
  }

private:
  friend class inbox_actor<connection>;

  void handle(caf::mailbox_element& e, caf::execution_unit* host) {
    try {
      if (e.mid.is_response()) {
        if (e.mid == awaited_)
          on_response(e.content(), host);
        return;
      }
      dispatch(e, host);
    } catch (const std::exception& x) {
      log(log_level::error, std::string{"connection fails: "} + x.what());
      quit(make_error(ec::unhandled_exception, x.what()), host);
    } catch (...) {
      log(log_level::error, "connection fails: unknown exception");
      quit(make_error(ec::unhandled_exception, "unknown exception"), host);
    }
  }

  void dispatch(caf::mailbox_element& e, caf::execution_unit* host) {
    auto& msg = e.content();
    if (msg.match_elements<atom::live, stored>()) {
      // A stored update, from the broadcaster.
      on_live(msg.get_as<stored>(1), host);
    } else if (msg.match_elements<atom::heartbeat>()) {
      // No traffic for --heartbeat, from the broadcaster.
      if (auto sink = sink_.lock())
        sink->deliver(heartbeat_frame(), 0);
    } else if (msg.match_elements<atom::session, session_state>()) {
      // The session ended, from the HTTP session.
      quit(caf::exit_reason::normal, host);
    } else if (msg.match_elements<atom::retire>()) {
      // The stream reached its age, from itself.
      quit(retired(), host);
    } else if (msg.match_elements<atom::ended, caf::error>()) {
      // The broadcaster ended, which ends the stream (it does not monitor
      // the broadcaster: see there).
      const auto& reason = msg.get_as<caf::error>(1);
      quit(reason ? reason : caf::error{caf::exit_reason::normal}, host);
    } else if (msg.match_elements<caf::exit_msg>()) {
      // As for CAF's actors: ends it unless the reason is normal.
      const auto& x = msg.get_as<caf::exit_msg>(0);
      if (x.reason)
        quit(x.reason, host);
    } else if (msg.match_elements<caf::down_msg>()) {
      // It monitors nothing: dropped.
    } else {
      log(log_level::warn,
          "connection drops an unexpected message: " + msg.stringify());
      if (e.mid.is_request())
        reject(e, host);
    }
  }

  void on_live(const stored& s, caf::execution_unit* host) {
    const auto* f = resume_.on_live(s);
    if (f) {
      auto gap = resume_.take_gap();
      if (auto sink = sink_.lock()) {
        if (gap) {
          stats_->gap_events.fetch_add(1, std::memory_order_relaxed);
          sink->deliver(gap, 0);
        }
        sink->deliver(*f, s.stored_ns);
      }
    }
    if (s.probe)
      fanout_probe::handed(s.probe);
    if (!f && resume_.held() > max_held_) {
      log(log_level::warn, "connection drops a client: history reply late");
      quit(make_error(ec::peer_unavailable, "history reply late"), host);
    }
  }

  /// The broadcaster's answer to `subscribe`, then the buffer's to
  /// `history`.
  void on_response(const caf::type_erased_tuple& msg,
                   caf::execution_unit* host) {
    const char* step = subscribed_ ? "history" : "subscribe";
    if (msg.match_elements<caf::error>()) {
      give_up(msg.get_as<caf::error>(0), step, host);
    } else if (!subscribed_ && msg.match_elements<uint64_t>()) {
      subscribed_ = true;
      ask(buffer_, host, atom::history_v, from_, msg.get_as<uint64_t>(0));
    } else if (subscribed_ && msg.match_elements<history>()) {
      awaited_ = caf::message_id{};
      on_history(msg.get_as<history>(0));
    } else {
      give_up(make_error(ec::invalid_argument, "unexpected answer"), step,
              host);
    }
  }

  void on_history(const history& h) {
    // The latest update a fresh client gets first is not a replay: only
    // resumes count.
    if (resuming_)
      stats_->replayed_events.fetch_add(h.frames.size(),
                                        std::memory_order_relaxed);
    auto gaps = resume_.gaps();
    auto out = resume_.on_history(h);
    stats_->gap_events.fetch_add(resume_.gaps() - gaps,
                                 std::memory_order_relaxed);
    auto sink = sink_.lock();
    if (sink && !out.empty())
      sink->replay(std::move(out));
  }

  /// Sends a request; its answer (or CAF's error for it) comes back as a
  /// response with the same id.
  template<class Handle, class... Ts>
  void ask(const Handle& dest, caf::execution_unit* host, Ts&&... xs) {
    awaited_ = caf::make_message_id(++requests_).response_id();
    auto request = caf::make_message_id(requests_);
    caf::actor_cast<caf::abstract_actor*>(dest)->enqueue(
        caf::make_mailbox_element(caf::strong_actor_ptr{ctrl()}, request, {},
                                  std::forward<Ts>(xs)...),
        host);
  }

  void give_up(const caf::error& err, const char* step,
               caf::execution_unit* host) {
    log(log_level::warn, std::string{"connection ends: "} + step
                             + " failed: " + home_system().render(err));
    quit(err, host);
  }

  /// Answers a request this actor does not take (it takes none).
  void reject(caf::mailbox_element& e, caf::execution_unit* host) {
    auto sender = e.sender;
    if (sender)
      sender->enqueue(caf::make_mailbox_element(
                          nullptr, e.mid.response_id(), {},
                          caf::make_error(caf::sec::unexpected_message)),
                      host);
  }

  /// Ends the actor: closes its inbox (requests in it fail), runs its
  /// attachables (the broadcaster's monitor), closes the sink with what
  /// the session counts for `reason`.
  void quit(caf::error reason, caf::execution_unit* host) {
    if (getf(is_cleaned_up_flag))
      return;
    auto cause = cause_of(reason);
    close_inbox();
    unregister_from_system();
    if (!cleanup(std::move(reason), host))
      return;
    if (counted_)
      stats_->connection_actors.fetch_sub(1, std::memory_order_relaxed);
    if (auto sink = sink_.lock())
      sink->close(cause);
  }

  // What a live frame touches comes first, right after the inbox
  // (docs/performance.md, "Cold lines").
  std::weak_ptr<frame_sink> sink_;
  seam resume_;
  std::shared_ptr<metrics> stats_;
  size_t max_held_;
  bool resuming_;
  bool subscribed_ = false;
  bool counted_ = false;
  caf::message_id awaited_;
  uint64_t requests_ = 0;
  resume_point from_;
  broadcaster_actor broadcaster_;
  buffer_actor buffer_;
};

} // namespace

connection_actor
spawn_connection(caf::actor_system& sys, std::shared_ptr<frame_sink> sink,
                 resume_point from, broadcaster_actor broadcaster,
                 buffer_actor buffer, size_t max_held,
                 std::shared_ptr<metrics> stats, caf::timespan max_age) {
  caf::actor_config cfg;
  auto handle = caf::make_actor<connection, caf::actor>(
      sys.next_actor_id(), sys.node(), &sys, cfg, std::move(sink),
      std::move(from), std::move(broadcaster), std::move(buffer), max_held,
      std::move(stats));
  auto* self
      = static_cast<connection*>(caf::actor_cast<caf::abstract_actor*>(handle));
  self->start(max_age);
  return caf::actor_cast<connection_actor>(std::move(handle));
}

} // namespace btcstream

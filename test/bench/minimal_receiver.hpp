// minimal_receiver: for fanout_actors only, a measuring instrument. The
// least a CAF 0.17 actor can be and still take the live message through
// its handle: a `monitorable_actor` (address, monitors, attachables) that
// is its own `resumable`, with the connection actor's inbox and one
// hard-wired handler. What CAF's event-based actor adds per delivery is
// the difference between this receiver and a plain event-based one; what
// the connection actor's own work costs, the difference between it and
// this (docs/performance.md, "What one CAF actor per connection costs").
#pragma once

#include "actors/atoms.hpp"
#include "actors/inbox.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/update.hpp"

#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/type_erased_tuple.hpp>

#include <memory>
#include <utility>

namespace btcstream::bench {

class minimal_receiver final : public caf::monitorable_actor,
                               public caf::resumable {
public:
  minimal_receiver(caf::actor_config& cfg, std::shared_ptr<frame_sink> sink)
      : caf::monitorable_actor(cfg), sink_(std::move(sink)) {}

  /// Pushes onto the inbox; the sender that finds the reader waiting
  /// schedules it, as CAF's own actors do.
  void enqueue(caf::mailbox_element_ptr what,
               caf::execution_unit* host) override {
    if (inbox_.push(what) != inbox::pushed::woke_reader)
      return; // queued, or dropped after `ended`
    caf::intrusive_ptr_add_ref(ctrl());
    if (host != nullptr)
      host->exec_later(this);
    else
      home_system().scheduler().enqueue(this);
  }

  /// Handles everything in the inbox, oldest first, then waits.
  resume_result resume(caf::execution_unit* host, size_t) override {
    for (;;) {
      auto* e = inbox_.take_all();
      while (e != nullptr) {
        caf::mailbox_element_ptr msg{e};
        e = static_cast<caf::mailbox_element*>(e->next);
        if (!handle(msg->content())) {
          inbox::release(e);
          inbox::release(inbox_.close());
          cleanup(caf::exit_reason::normal, host);
          return done;
        }
      }
      if (inbox_.try_block())
        return awaiting_message;
    }
  }

  // subtype(): CAF's default, `unspecified`. CAF casts a job of subtype
  // `scheduled_actor` to its own class of that name (at shutdown, in
  // cleanup_and_release), which this is not.

  void intrusive_ptr_add_ref_impl() override {
    caf::intrusive_ptr_add_ref(ctrl());
  }

  void intrusive_ptr_release_impl() override {
    caf::intrusive_ptr_release(ctrl());
  }

private:
  /// The connection's live handler, minus the seam; false on `ended`.
  bool handle(const caf::type_erased_tuple& msg) {
    if (msg.match_elements<atom::live, stored>()) {
      const auto& s = msg.get_as<stored>(1);
      sink_->deliver(s.frame, s.stored_ns);
      if (s.probe)
        fanout_probe::handed(s.probe);
      return true;
    }
    return msg.empty() || !msg.match_element<atom::ended>(0);
  }

  std::shared_ptr<frame_sink> sink_;
  inbox inbox_;
};

} // namespace btcstream::bench

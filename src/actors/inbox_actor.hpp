#pragma once

#include "actors/inbox.hpp"

#include <caf/actor_system.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/monitorable_actor.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/sec.hpp>

namespace btcstream {

/// A CAF actor written by hand around an `inbox`: an address, monitors and
/// attachables (`monitorable_actor`), and its own `resumable`, so that any
/// CAF scheduler (ours, or the test coordinator) runs it like any actor.
/// `Derived` provides `void handle(caf::mailbox_element&,
/// caf::execution_unit*)`, which ends the actor by `close_inbox()` and
/// CAF's `cleanup`. Each turn takes everything queued, oldest first: for
/// actors whose messages all have one priority and come a few at a time
/// (connection.hpp).
template<class Derived>
class inbox_actor : public caf::monitorable_actor, public caf::resumable {
public:
  explicit inbox_actor(caf::actor_config& cfg) : caf::monitorable_actor(cfg) {}

  /// Any thread. The sender that finds the actor waiting schedules it, as
  /// for CAF's own actors; after its end a request fails at once.
  void enqueue(caf::mailbox_element_ptr what,
               caf::execution_unit* host) override {
    switch (inbox_.push(what)) {
    case inbox::pushed::queued:
      return;
    case inbox::pushed::woke_reader:
      // The scheduler's reference, released when the turn ends.
      caf::intrusive_ptr_add_ref(ctrl());
      if (host != nullptr)
        host->exec_later(this);
      else
        home_system().scheduler().enqueue(this);
      return;
    case inbox::pushed::closed:
      bounce(what, caf::sec::request_receiver_down);
      return;
    }
  }

  resume_result resume(caf::execution_unit* host, size_t) override {
    for (;;) {
      auto* e = inbox_.take_all();
      while (e != nullptr) {
        caf::mailbox_element_ptr msg{e};
        e = static_cast<caf::mailbox_element*>(e->next);
        static_cast<Derived*>(this)->handle(*msg, host);
        if (inbox_.closed()) {
          drop(e);
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

protected:
  /// At the actor's end: what is still queued is dropped (a request among
  /// it fails), and so is every later message.
  void close_inbox() { drop(inbox_.close()); }

private:
  void drop(caf::mailbox_element* e) {
    while (e != nullptr) {
      caf::mailbox_element_ptr msg{e};
      e = static_cast<caf::mailbox_element*>(e->next);
      bounce(msg, caf::sec::request_receiver_down);
    }
  }

  inbox inbox_;
};

} // namespace btcstream

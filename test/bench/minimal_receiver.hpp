// minimal_receiver: for fanout_actors only, a measuring instrument, not a
// design. The least a CAF 0.17 actor can be and still take the live
// message through its handle: a `monitorable_actor` (address, monitors,
// attachables) that is its own `resumable`, with one lock-free inbox and
// one hard-wired handler. No behaviour stack, no four category queues, no
// response promises, no default handlers, no stream bookkeeping: what
// CAF's event-based actor adds per activation is the difference between
// this receiver and a plain event-based one (docs/performance.md, "What
// one CAF actor per connection costs").
#pragma once

#include "actors/atoms.hpp"
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

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>

namespace btcstream::bench {

class minimal_receiver final : public caf::monitorable_actor,
                               public caf::resumable {
public:
  minimal_receiver(caf::actor_config& cfg, std::shared_ptr<frame_sink> sink)
      : caf::monitorable_actor(cfg), sink_(std::move(sink)) {}

  ~minimal_receiver() override { release(head_.exchange(closed())); }

  /// Pushes onto the inbox; the sender that finds the reader blocked
  /// schedules it, as CAF's own actors do.
  void enqueue(caf::mailbox_element_ptr what,
               caf::execution_unit* host) override {
    auto* head = head_.load(std::memory_order_relaxed);
    do {
      if (head == closed())
        return; // after `ended`: dropped, as by CAF's closed mailbox
      what->next = head == blocked() ? nullptr : head;
    } while (!head_.compare_exchange_weak(head, what.get(),
                                          std::memory_order_release,
                                          std::memory_order_relaxed));
    what.release();
    if (head != blocked())
      return;
    caf::intrusive_ptr_add_ref(ctrl());
    if (host != nullptr)
      host->exec_later(this);
    else
      home_system().scheduler().enqueue(this);
  }

  /// Handles everything in the inbox, oldest first, then blocks.
  resume_result resume(caf::execution_unit* host, size_t) override {
    for (;;) {
      caf::mailbox_element* oldest = nullptr;
      for (auto* e = head_.exchange(nullptr, std::memory_order_acquire);
           e != nullptr;) {
        auto* next = static_cast<caf::mailbox_element*>(e->next);
        e->next = oldest;
        oldest = e;
        e = next;
      }
      while (oldest != nullptr) {
        auto* next = static_cast<caf::mailbox_element*>(oldest->next);
        caf::mailbox_element_ptr e{oldest};
        oldest = next;
        if (!handle(e->content())) {
          close(oldest);
          cleanup(caf::exit_reason::normal, host);
          return done;
        }
      }
      caf::mailbox_element* empty = nullptr;
      if (head_.compare_exchange_strong(empty, blocked()))
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

  /// Closes the inbox and drops what is in it, and `rest`.
  void close(caf::mailbox_element* rest) {
    release(rest);
    release(head_.exchange(closed()));
  }

  static void release(caf::mailbox_element* e) {
    while (e != nullptr && e != blocked() && e != closed()) {
      auto* next = static_cast<caf::mailbox_element*>(e->next);
      caf::mailbox_element_ptr drop{e};
      e = next;
    }
  }

  /// The inbox's value while the reader waits for a message.
  static caf::mailbox_element* blocked() {
    return reinterpret_cast<caf::mailbox_element*>(uintptr_t{1});
  }

  /// The inbox's value once the actor has ended.
  static caf::mailbox_element* closed() {
    return reinterpret_cast<caf::mailbox_element*>(uintptr_t{2});
  }

  std::shared_ptr<frame_sink> sink_;
  std::atomic<caf::mailbox_element*> head_{blocked()};
};

} // namespace btcstream::bench

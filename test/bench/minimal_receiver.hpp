// minimal_receiver: for fanout_actors only, a measuring instrument. The
// least a CAF 0.17 actor can be and still take the live message through
// its handle: a `monitorable_actor` (address, monitors, attachables) that
// is its own `resumable` (the connection actor's `inbox_actor`), with one
// hard-wired handler. What CAF's event-based actor adds per delivery is
// the difference between this receiver and a plain event-based one; what
// the connection actor's own work costs, the difference between it and
// this (docs/performance.md, "What one CAF actor per connection costs").
#pragma once

#include "actors/atoms.hpp"
#include "actors/inbox_actor.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/update.hpp"

#include <caf/mailbox_element.hpp>
#include <caf/type_erased_tuple.hpp>

#include <memory>
#include <utility>

namespace btcstream::bench {

class minimal_receiver final : public inbox_actor<minimal_receiver> {
public:
  minimal_receiver(caf::actor_config& cfg, std::shared_ptr<frame_sink> sink)
      : inbox_actor(cfg), sink_(std::move(sink)) {}

private:
  friend class inbox_actor<minimal_receiver>;

  /// The connection's live handler, minus the seam; `ended` ends it.
  void handle(caf::mailbox_element& e, caf::execution_unit* host) {
    const auto& msg = e.content();
    if (msg.match_elements<atom::live, stored>()) {
      const auto& s = msg.get_as<stored>(1);
      sink_->deliver(s.frame, s.stored_ns);
      if (s.probe)
        fanout_probe::handed(s.probe);
    } else if (!msg.empty() && msg.match_element<atom::ended>(0)) {
      close_inbox();
      cleanup(caf::exit_reason::normal, host);
    }
  }

  std::shared_ptr<frame_sink> sink_;
};

} // namespace btcstream::bench

#pragma once

#include "actors/actors.hpp"
#include "core/service_port.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <memory>

namespace btcstream {

/// The actor-side implementation of `service_port`: each call spawns a
/// short-lived actor that asks the core actors and calls back (with an
/// empty answer when they do not reply within `timeout`).
std::shared_ptr<service_port>
make_service_port(caf::actor_system& sys, fetcher_actor fetcher,
                  buffer_actor buffer, broadcaster_actor broadcaster,
                  bus_actor bus, caf::timespan timeout);

} // namespace btcstream

#pragma once

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "core/stream_port.hpp"

#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include <cstddef>
#include <memory>

namespace btcstream {

/// The actor-side implementation of `stream_port`: each `open` spawns one
/// connection actor wired to the broadcaster and the buffer.
std::shared_ptr<stream_port>
make_stream_port(caf::actor_system& sys, broadcaster_actor broadcaster,
                 buffer_actor buffer, size_t max_held,
                 std::shared_ptr<metrics> stats, caf::timespan max_age);

} // namespace btcstream

#pragma once

#include <caf/actor.hpp>

#include <functional>
#include <string>

namespace btcstream {

/// Calls `on_death(name, reason)` when `core` exits while `expected()` is
/// false: a core actor that dies outside shutdown must take the process with
/// it (a stream that never updates again is worse than a restart).
void watch_core_actor(
    const caf::actor& core, std::string name, std::function<bool()> expected,
    std::function<void(const std::string& name, const std::string& reason)>
        on_death);

} // namespace btcstream

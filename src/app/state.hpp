#pragma once

#include "actors/actors.hpp"
#include "app/config.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <vector>

namespace btcstream {

/// The updates of `--state-file` still worth restoring (oldest first); logs
/// why a file was ignored. Empty without a state file.
std::vector<update> load_state(const config& cfg, const std::string& instrument,
                               int64_t now_ms);

/// Stops the fetcher's polling, then saves the buffer's updates to
/// `--state-file` (atomically); logs the outcome. Waits for the actors at
/// most `timeout` in all. Call before the core actors exit.
void save_state(caf::actor_system& sys, const fetcher_actor& fetcher,
                const buffer_actor& buffer, const config& cfg,
                const std::string& instrument,
                std::chrono::milliseconds timeout);

} // namespace btcstream

#pragma once

#include "app/config.hpp"

namespace btcstream {

/// Runs the service until SIGTERM/SIGINT (exit 0) or the death of a core
/// actor (exit 1). Returns the process exit code.
int run_service(const config& cfg);

} // namespace btcstream

#pragma once

#include "app/config.hpp"

namespace btcstream {

/// `btcstream --healthcheck`: asks the running service on --listen (0.0.0.0
/// and :: mean loopback) for /healthz within 3 s. Returns 0 on 200, else 1.
/// For container health checks without curl in the image.
int run_healthcheck(const config& cfg);

} // namespace btcstream

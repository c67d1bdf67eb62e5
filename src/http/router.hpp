#pragma once

#include "core/metrics.hpp"

#include <string_view>

namespace btcstream {

/// What a request path names.
enum class route_kind {
  stream,      ///< /stream: SSE
  price,       ///< /api/v1/price
  prices,      ///< /api/v1/prices
  info,        ///< /api/v1/info
  healthz,     ///< /healthz: liveness
  readyz,      ///< /readyz: readiness
  metrics,     ///< /metrics: Prometheus exposition
  static_file, ///< anything else: looked up in the web root
};

/// The route for a decoded path.
route_kind route_for(std::string_view path);

/// Whether a route is answered even on a connection over
/// --max-http-connections: the health probes (a flood of idle connections
/// must not get a healthy process restarted) and /stream (bounded by
/// --max-clients on its own: such a flood must not keep new clients out).
bool answered_over_cap(route_kind k);

/// Whether a route is served on the admin listener (--admin-listen):
/// metrics, health, readiness and info; everything else is 404 there.
bool admin_route(route_kind k);

/// The metrics label of a route.
route_label label_for(route_kind k);

/// How a route treats a method: every route answers GET and HEAD, and
/// OPTIONS as a CORS preflight; anything else is 405.
enum class method_action { serve, preflight, not_allowed };
method_action action_for(std::string_view method);

/// The `Allow` header of a 405: every method a route answers.
inline constexpr std::string_view allowed_methods = "GET, HEAD, OPTIONS";

} // namespace btcstream

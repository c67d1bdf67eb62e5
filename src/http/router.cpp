#include "http/router.hpp"

#include <array>
#include <utility>

namespace btcstream {

route_kind route_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, route_kind>, 6> routes
      = {{
          {"/stream", route_kind::stream},
          {"/api/v1/price", route_kind::price},
          {"/api/v1/prices", route_kind::prices},
          {"/api/v1/info", route_kind::info},
          {"/healthz", route_kind::healthz},
          {"/readyz", route_kind::readyz},
      }};
  for (auto& [p, kind] : routes)
    if (p == path)
      return kind;
  return route_kind::static_file;
}

method_action action_for(std::string_view method) {
  if (method == "GET" || method == "HEAD")
    return method_action::serve;
  if (method == "OPTIONS")
    return method_action::preflight;
  return method_action::not_allowed;
}

} // namespace btcstream

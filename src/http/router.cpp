#include "http/router.hpp"

#include <array>
#include <utility>

namespace btcstream {

route_kind route_for(std::string_view path) {
  static constexpr std::array<std::pair<std::string_view, route_kind>, 7> routes
      = {{
          {"/stream", route_kind::stream},
          {"/api/v1/price", route_kind::price},
          {"/api/v1/prices", route_kind::prices},
          {"/api/v1/info", route_kind::info},
          {"/healthz", route_kind::healthz},
          {"/readyz", route_kind::readyz},
          {"/metrics", route_kind::metrics},
      }};
  for (auto& [p, kind] : routes)
    if (p == path)
      return kind;
  return route_kind::static_file;
}

bool answered_over_cap(route_kind k) {
  return k == route_kind::healthz || k == route_kind::readyz
         || k == route_kind::stream;
}

bool admin_route(route_kind k) {
  return k == route_kind::metrics || k == route_kind::healthz
         || k == route_kind::readyz || k == route_kind::info;
}

route_label label_for(route_kind k) {
  switch (k) {
  case route_kind::stream:
    return route_label::stream;
  case route_kind::price:
    return route_label::price;
  case route_kind::prices:
    return route_label::prices;
  case route_kind::info:
    return route_label::info;
  case route_kind::healthz:
    return route_label::healthz;
  case route_kind::readyz:
    return route_label::readyz;
  case route_kind::metrics:
    return route_label::metrics;
  case route_kind::static_file:
    return route_label::static_file;
  }
  return route_label::unknown;
}

method_action action_for(std::string_view method) {
  if (method == "GET" || method == "HEAD")
    return method_action::serve;
  if (method == "OPTIONS")
    return method_action::preflight;
  return method_action::not_allowed;
}

} // namespace btcstream

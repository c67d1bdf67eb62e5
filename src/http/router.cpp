#include "http/router.hpp"

namespace btcstream {

route_kind route_for(std::string_view path) {
  if (path == "/stream")
    return route_kind::stream;
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

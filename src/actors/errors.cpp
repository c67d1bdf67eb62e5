#include "actors/errors.hpp"

#include "core/log.hpp"

#include <caf/all.hpp>

#include <exception>

namespace btcstream {

std::string to_string(ec x) {
  switch (x) {
  case ec::none:
    return "none";
  case ec::invalid_argument:
    return "invalid_argument";
  case ec::unhandled_exception:
    return "unhandled_exception";
  case ec::peer_unavailable:
    return "peer_unavailable";
  case ec::stream_aged:
    return "stream_aged";
  }
  return "unknown";
}

caf::error make_error(ec x, std::string context) {
  return caf::make_error(x, std::move(context));
}

void set_default_handlers(caf::scheduled_actor* self) {
  self->set_exception_handler(
      [](caf::scheduled_actor* who, std::exception_ptr& ep) -> caf::error {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log(log_level::error, std::string{who->name()} + " fails: " + what);
        return make_error(ec::unhandled_exception, std::move(what));
      });
}

} // namespace btcstream

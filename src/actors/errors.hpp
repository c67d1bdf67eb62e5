#pragma once

#include <caf/error.hpp>
#include <caf/fwd.hpp>
#include <caf/make_message.hpp>
#include <caf/scheduled_actor.hpp>

#include <cstdint>
#include <string>

namespace btcstream {

/// Every error btcstream's actors report.
enum class ec : uint8_t {
  /// Not an error.
  none = 0,
  /// An actor was spawned with an unusable argument.
  invalid_argument,
  /// A handler threw an exception.
  unhandled_exception,
  /// A peer actor died or did not answer in time.
  peer_unavailable,
  /// A stream reached --max-stream-age (a clean end: the client resumes).
  stream_aged,
};

/// A name for `ec` values, for CAF's error rendering.
std::string to_string(ec x);

/// Makes an error in btcstream's category with a context message.
caf::error make_error(ec x, std::string context);

/// Installs the exception handler every btcstream actor uses: the exception
/// becomes the exit reason (and reaches requesters as an error).
void set_default_handlers(caf::scheduled_actor* self);

} // namespace btcstream

CAF_ERROR_CODE_ENUM(btcstream::ec, "btcstream")

#pragma once

#include "core/frame_sink.hpp"
#include "core/query.hpp"

#include <memory>

namespace btcstream {

/// How the HTTP front end opens a stream without knowing about actors:
/// implemented in actors/ (spawns a connection actor), faked in tests.
struct stream_port {
  virtual ~stream_port() = default;
  /// Starts streaming to `sink` from `from`. The returned object receives the
  /// session's one state change. The stream holds `sink` weakly: the caller
  /// keeps it alive. Thread-safe.
  virtual std::shared_ptr<session_events> open(resume_point from,
                                               std::shared_ptr<frame_sink> sink)
      = 0;
};

} // namespace btcstream

#pragma once

#include "core/update.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace btcstream {

/// The buffer's answer for the latest update: none yet, or no answer at all
/// (which a client must not read as "none yet").
struct latest_answer {
  bool answered = true;
  std::optional<update> latest;
};

/// How the HTTP front end asks the core for REST and health answers without
/// knowing about actors: implemented in actors/, faked in tests. Every
/// callback runs exactly once, on any thread; the caller posts it back onto
/// its own strand.
struct service_port {
  virtual ~service_port() = default;

  /// The latest update stored (not subject to the TTL), if any; `answered`
  /// false when the core does not answer.
  virtual void latest(std::function<void(latest_answer)> done) = 0;

  /// Buffered updates with ts_ms >= since_ms (every one without), oldest
  /// first; nullopt when the core does not answer (not "no updates").
  virtual void
  updates(std::optional<int64_t> since_ms,
          std::function<void(std::optional<std::vector<update>>)> done)
      = 0;

  /// A round trip through the fetcher, the buffer and the broadcaster:
  /// true when all three answered in time.
  virtual void health(std::function<void(bool)> done) = 0;

  /// Cluster mode: the lease holder's node id as last seen, "" when nobody
  /// holds it or the core does not answer. One node: "" at once.
  virtual void leader(std::function<void(std::string)> done) = 0;

  /// Actors running in the core now, of every kind (a live-object count).
  virtual int64_t running_actors() const = 0;
};

} // namespace btcstream

#pragma once

#include "core/update.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace btcstream {

/// One entry of the cluster's log (DESIGN.md, "Cluster mode"): an update and
/// the id of the entry before it in the log (0 for the first ever).
struct log_entry {
  update u;
  /// The id of the previous entry in the log; a node that holds a different
  /// newest id has found a hole.
  uint64_t prev = 0;
  /// When Redis appended it (Redis's clock, unix ms), for the ingest lag.
  int64_t appended_ms = 0;
};

inline bool operator==(const log_entry& a, const log_entry& b) {
  return a.u == b.u && a.prev == b.prev && a.appended_ms == b.appended_ms;
}

/// Why a cluster-log operation produced no answer.
enum class log_failure {
  none,     ///< an answer arrived
  connect,  ///< resolve, connect, AUTH/SELECT failed, or the connection broke
  timeout,  ///< no complete reply within the operation's time limit
  protocol, ///< a reply of the wrong shape (a foreign key, a bug)
  server,   ///< Redis answered with an error (-ERR, -WRONGTYPE, -OOM, ...)
};

/// The lease as Redis holds it after a `lease` call.
struct lease_reply {
  log_failure failure = log_failure::none;
  /// A description of the failure for logs (never holds the password).
  std::string error;
  /// The holder's token and node id; token 0 and an empty node: nobody.
  /// The caller holds the lease exactly when `node` is its own id and
  /// `token` is the token it asked to renew, or a new one it was granted.
  uint64_t token = 0;
  std::string node;
};

/// The outcome of an `append`.
struct append_reply {
  log_failure failure = log_failure::none;
  std::string error;
  /// The append was refused: the caller no longer holds the lease (fencing).
  bool fenced = false;
  /// The id the log assigned: max(ts_ms, newest id in the log + 1, floor).
  uint64_t id = 0;
};

/// The outcome of a `release`.
struct release_reply {
  log_failure failure = log_failure::none;
  std::string error;
  /// The lease was the caller's and is deleted now.
  bool released = false;
};

/// The outcome of a `read`.
struct read_reply {
  log_failure failure = log_failure::none;
  std::string error;
  /// Entries with id > the `after` asked for, oldest first (at most `count`).
  std::vector<log_entry> entries;
  /// Entries that were skipped because they could not be decoded (their
  /// ids are absent from `entries`: the reader sees a hole there).
  size_t malformed = 0;
  /// The millisecond part of the newest stream id in the reply, decodable or
  /// not (0 when the reply is empty): the reader's next `after`, so that a
  /// malformed entry is read once, never again.
  uint64_t last_id = 0;
};

/// The cluster's log and lease on one Redis connection, asynchronous and
/// free of CAF and Asio so that actor tests can use an in-memory fake.
///
/// Each call sends one command (pipelined behind any in flight) and calls
/// `done` exactly once, from any thread (the caller posts or sends the
/// result to itself). A failed call (connect, timeout, protocol) closes the
/// connection; the next call reconnects. Calls never block the caller.
struct cluster_log {
  virtual ~cluster_log() = default;

  /// Acquires or renews the lease, atomically in Redis: if `node` holds it
  /// with `token`, extends it to `ttl`; if nobody holds it, grants it to
  /// `node` with a new token (larger than any granted before by this Redis)
  /// for `ttl`; else leaves it. Replies with the holder afterwards.
  virtual void lease(const std::string& node, uint64_t token,
                     std::chrono::milliseconds ttl,
                     std::function<void(lease_reply)> done)
      = 0;

  /// Appends one update, atomically in Redis, if and only if `node` holds
  /// the lease with `token` (else `fenced`): id = max(u.ts_ms, newest id in
  /// the log + 1, floor), prev = newest id in the log (0 if none); then
  /// trims the log to `max_len` entries and drops entries with id below
  /// u.ts_ms - ttl. `u.id` is ignored.
  virtual void append(const std::string& node, uint64_t token, const update& u,
                      uint64_t floor, uint64_t max_len,
                      std::chrono::milliseconds ttl,
                      std::function<void(append_reply)> done)
      = 0;

  /// Deletes the lease, atomically in Redis, if and only if `node` holds it
  /// with `token`, so that another node can take it at once instead of
  /// after its TTL (a clean shutdown of the leader).
  virtual void release(const std::string& node, uint64_t token,
                       std::function<void(release_reply)> done)
      = 0;

  /// Reads up to `count` entries whose stream id is above `<after>-<max
  /// sequence>` (so entries written by hand with another sequence number at
  /// `after` are skipped too), oldest first. With
  /// `block`, waits up to that long for the first one (an empty reply when
  /// none came); without, answers at once.
  virtual void read(uint64_t after, size_t count,
                    std::optional<std::chrono::milliseconds> block,
                    std::function<void(read_reply)> done)
      = 0;

  /// Cancels what is in flight (their callbacks still run once, with
  /// `connect`) and closes the connection; later calls fail at once.
  virtual void stop() = 0;
};

const char* to_string(log_failure f);

} // namespace btcstream

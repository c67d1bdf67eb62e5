#pragma once

#include "cluster/redis_connection.hpp"
#include "core/cluster_log.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace btcstream {

/// The cluster's log and lease in Redis (DESIGN.md, "Cluster mode"), over
/// one `redis_connection`. Keys, for `prefix` "btcstream":
///   btcstream:log    a Stream: one entry per update, id "<id>-0", fields
///                    ts, price (format_price text), prev, at (Redis ms)
///   btcstream:lease  a string "<token> <node>" with a PX expiry
///   btcstream:token  an INCR counter: the last token granted
/// Lease and append are Lua scripts, so each is atomic inside Redis.
///
/// Commands on one connection are answered in order, so a blocking `read`
/// holds back every call issued after it: give the blocking reader its own
/// redis_log (and connection), apart from the leader's lease and appends.
class redis_log final : public cluster_log {
public:
  /// A log over `conn` under the key prefix `prefix`; lease, append and
  /// non-blocking reads must be answered within `timeout`, blocking reads
  /// within their block time + `block_margin`.
  redis_log(std::shared_ptr<redis_connection> conn, std::string prefix,
            std::chrono::milliseconds timeout = std::chrono::seconds{2},
            std::chrono::milliseconds block_margin = std::chrono::seconds{2});

  /// Stops the connection: pending callbacks run once with `connect`.
  ~redis_log() override;

  /// See cluster_log::lease.
  void lease(const std::string& node, uint64_t token,
             std::chrono::milliseconds ttl,
             std::function<void(lease_reply)> done) override;

  /// See cluster_log::append.
  void append(const std::string& node, uint64_t token, const update& u,
              uint64_t floor, uint64_t max_len, std::chrono::milliseconds ttl,
              std::function<void(append_reply)> done) override;

  /// See cluster_log::release.
  void release(const std::string& node, uint64_t token,
               std::function<void(release_reply)> done) override;

  /// See cluster_log::read. A block of 0 ms reads without blocking (Redis
  /// would take BLOCK 0 as "forever").
  void read(uint64_t after, size_t count,
            std::optional<std::chrono::milliseconds> block,
            std::function<void(read_reply)> done) override;

  /// See cluster_log::stop; stops the connection.
  void stop() override;

  /// The Lua source of the lease script (KEYS: lease, token; ARGV: node,
  /// token, ttl ms).
  static const std::string& lease_script();
  /// The Lua source of the append script (KEYS: lease, log; ARGV: "<token>
  /// <node>", ts ms, price text, floor, max_len, ttl ms).
  static const std::string& append_script();
  /// The Lua source of the release script (KEYS: lease; ARGV: "<token>
  /// <node>").
  static const std::string& release_script();

private:
  void run_script(const std::string& script,
                  std::vector<std::string> keys_and_args,
                  redis_connection::callback done);

  std::shared_ptr<redis_connection> conn_;
  std::string log_key_;
  std::string lease_key_;
  std::string token_key_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds block_margin_;
};

} // namespace btcstream

#pragma once

#include "core/cluster_log.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace btcstream {

/// This node's view of the cluster's lease, as plain logic for the bus
/// (DESIGN.md, "The leader"). Times are steady-clock nanoseconds.
///
///   following ──reply: granted to us──▶ leading
///       ▲                                  │ reply: held by another,
///       └──────────────────────────────────┘ or not renewed by the deadline
///
/// A lease request goes out every ttl / 3. A leader's deadline is 3/4 of the
/// TTL after it SENT its last successful request: Redis started the TTL later
/// than that, so the leader stops polling before Redis can have let the lease
/// go, whatever the network delay, and has two renewals to miss first.
class lease_view {
public:
  enum class change { none, acquired, lost };

  /// @param node this node's id.
  /// @param ttl the lease's time to live (> 0).
  lease_view(std::string node, std::chrono::nanoseconds ttl);

  /// Time between lease requests.
  std::chrono::nanoseconds period() const { return ttl_ / 3; }

  /// The reply to the request sent at `sent_ns`, arriving at `now_ns`.
  change on_reply(int64_t sent_ns, int64_t now_ns, const lease_reply& r);

  /// Time passes: a leader past its deadline gives the lease up.
  change on_time(int64_t now_ns);

  /// Redis refused an append with our token: the lease is not ours.
  change on_fenced();

  bool leading() const { return leading_; }
  /// The token to renew with or append with (0 when none).
  uint64_t token() const { return token_; }
  /// The holder as last seen ("" when nobody or not known yet).
  const std::string& holder() const { return holder_; }
  /// When a leader must have stopped polling (steady ns).
  int64_t deadline_ns() const { return deadline_ns_; }

private:
  std::string node_;
  std::chrono::nanoseconds ttl_;
  bool leading_ = false;
  uint64_t token_ = 0;
  std::string holder_;
  int64_t deadline_ns_ = 0;
};

} // namespace btcstream

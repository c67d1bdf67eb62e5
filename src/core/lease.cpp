#include "core/lease.hpp"

namespace btcstream {

lease_view::lease_view(std::string node, std::chrono::nanoseconds ttl)
    : node_(std::move(node)), ttl_(ttl) {
  // nop
}

lease_view::change lease_view::on_reply(int64_t sent_ns, int64_t now_ns,
                                        const lease_reply& r) {
  if (r.failure != log_failure::none)
    return on_time(now_ns); // unknown: only the deadline decides
  holder_ = r.node;
  auto deadline = sent_ns + ttl_.count() * 3 / 4;
  bool ours = r.node == node_ && r.token != 0 && now_ns < deadline;
  if (ours) {
    // Granted or renewed (a new token if Redis had let ours expire).
    auto was = leading_;
    leading_ = true;
    token_ = r.token;
    deadline_ns_ = deadline;
    return was ? change::none : change::acquired;
  }
  if (r.node == node_)
    return on_time(now_ns); // ours, but too late to rely on
  return on_fenced();
}

lease_view::change lease_view::on_fenced() {
  token_ = 0;
  if (!leading_)
    return change::none;
  leading_ = false;
  return change::lost;
}

lease_view::change lease_view::on_time(int64_t now_ns) {
  if (!leading_ || now_ns < deadline_ns_)
    return change::none;
  leading_ = false;
  holder_.clear(); // unknown: Redis may have let the lease go
  // Keep the token: a late renewal with it may still succeed in Redis and
  // make this node lead again.
  return change::lost;
}

} // namespace btcstream

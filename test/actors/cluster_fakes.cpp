#include "cluster_fakes.hpp"

#include <stdexcept>

namespace btcstream::test {

namespace {

template<class Queue>
typename Queue::value_type pop(Queue& q, const char* what) {
  if (q.empty())
    throw std::logic_error(std::string{"no pending "} + what + " call");
  auto c = std::move(q.front());
  q.pop_front();
  return c;
}

} // namespace

void fake_cluster_log::lease(const std::string& node, uint64_t token,
                             std::chrono::milliseconds ttl,
                             std::function<void(lease_reply)> done) {
  leases.push_back({node, token, ttl, std::move(done)});
}

void fake_cluster_log::append(const std::string& node, uint64_t token,
                              const update& u, uint64_t floor, uint64_t max_len,
                              std::chrono::milliseconds ttl,
                              std::function<void(append_reply)> done) {
  appends.push_back({node, token, u, floor, max_len, ttl, std::move(done)});
}

void fake_cluster_log::release(const std::string& node, uint64_t token,
                               std::function<void(release_reply)> done) {
  releases.push_back({node, token, std::move(done)});
}

void fake_cluster_log::read(uint64_t after, size_t count,
                            std::optional<std::chrono::milliseconds> block,
                            std::function<void(read_reply)> done) {
  reads.push_back({after, count, block, std::move(done)});
}

fake_cluster_log::lease_call
fake_cluster_log::answer_lease(const std::string& holder, uint64_t token) {
  auto c = pop(leases, "lease");
  lease_reply r;
  r.node = holder;
  r.token = token;
  c.done(r);
  return c;
}

fake_cluster_log::lease_call fake_cluster_log::fail_lease() {
  auto c = pop(leases, "lease");
  lease_reply r;
  r.failure = log_failure::timeout;
  r.error = "timeout";
  c.done(r);
  return c;
}

fake_cluster_log::release_call
fake_cluster_log::answer_release(release_reply r) {
  auto c = pop(releases, "release");
  c.done(std::move(r));
  return c;
}

fake_cluster_log::append_call fake_cluster_log::answer_append(append_reply r) {
  auto c = pop(appends, "append");
  c.done(std::move(r));
  return c;
}

fake_cluster_log::read_call
fake_cluster_log::answer_read(std::vector<log_entry> entries) {
  auto c = pop(reads, "read");
  read_reply r;
  r.entries = std::move(entries);
  if (!r.entries.empty())
    r.last_id = r.entries.back().u.id;
  c.done(std::move(r));
  return c;
}

fake_cluster_log::read_call fake_cluster_log::fail_read(log_failure f) {
  auto c = pop(reads, "read");
  read_reply r;
  r.failure = f;
  r.error = "refused";
  c.done(std::move(r));
  return c;
}

} // namespace btcstream::test

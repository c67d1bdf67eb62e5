#pragma once

// A cluster log answered by hand, for the bus and reader tests: each call
// waits in a queue until the test answers it.

#include "core/cluster_log.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

namespace btcstream::test {

struct fake_cluster_log final : cluster_log {
  struct lease_call {
    std::string node;
    uint64_t token = 0;
    std::chrono::milliseconds ttl{0};
    std::function<void(lease_reply)> done;
  };
  struct append_call {
    std::string node;
    uint64_t token = 0;
    update u;
    uint64_t floor = 0;
    uint64_t max_len = 0;
    std::chrono::milliseconds ttl{0};
    std::function<void(append_reply)> done;
  };
  struct release_call {
    std::string node;
    uint64_t token = 0;
    std::function<void(release_reply)> done;
  };
  struct read_call {
    uint64_t after = 0;
    size_t count = 0;
    std::optional<std::chrono::milliseconds> block;
    std::function<void(read_reply)> done;
  };

  std::deque<lease_call> leases;
  std::deque<append_call> appends;
  std::deque<release_call> releases;
  std::deque<read_call> reads;
  bool stopped = false;

  void lease(const std::string& node, uint64_t token,
             std::chrono::milliseconds ttl,
             std::function<void(lease_reply)> done) override;
  void append(const std::string& node, uint64_t token, const update& u,
              uint64_t floor, uint64_t max_len, std::chrono::milliseconds ttl,
              std::function<void(append_reply)> done) override;
  void release(const std::string& node, uint64_t token,
               std::function<void(release_reply)> done) override;
  void read(uint64_t after, size_t count,
            std::optional<std::chrono::milliseconds> block,
            std::function<void(read_reply)> done) override;
  void stop() override { stopped = true; }

  /// Answers the oldest lease call with `holder` holding `token`; returns
  /// the call (it must exist).
  lease_call answer_lease(const std::string& holder, uint64_t token);
  /// Answers the oldest lease call with a failure.
  lease_call fail_lease();
  /// Answers the oldest append call.
  append_call answer_append(append_reply r);
  /// Answers the oldest release call.
  release_call answer_release(release_reply r);
  /// Answers the oldest read call with `entries`.
  read_call answer_read(std::vector<log_entry> entries);
  /// Answers the oldest read call with a failure.
  read_call fail_read(log_failure f);
};

} // namespace btcstream::test

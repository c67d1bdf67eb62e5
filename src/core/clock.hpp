#pragma once

#include <cstdint>

namespace btcstream {

/// The wall clock, injected so tests control timestamps, ids and TTLs.
struct wall_clock {
  virtual ~wall_clock() = default;
  /// Current time in unix milliseconds.
  virtual int64_t now_ms() const = 0;
};

/// The system's real-time clock.
struct system_wall_clock final : wall_clock {
  int64_t now_ms() const override;
};

/// A source of randomness for jitter, injected so tests are repeatable.
struct random_source {
  virtual ~random_source() = default;
  /// A uniformly distributed value in [0, 1).
  virtual double uniform() = 0;
};

/// A seeded pseudo-random source (splitmix64): cheap, repeatable, not
/// thread-safe.
class seeded_random final : public random_source {
public:
  explicit seeded_random(uint64_t seed);
  double uniform() override;

private:
  uint64_t state_;
};

/// Returns `base` scaled by a factor drawn uniformly from [1 - spread, 1 +
/// spread).
int64_t jitter(int64_t base, double spread, random_source& rng);

} // namespace btcstream

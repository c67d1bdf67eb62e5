#include "core/clock.hpp"

#include <chrono>
#include <cmath>

namespace btcstream {

int64_t system_wall_clock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

seeded_random::seeded_random(uint64_t seed) : state_(seed) {
  // nop
}

double seeded_random::uniform() {
  // splitmix64 (Steele, Lea, Flood 2014).
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  // The top 53 bits fill a double's mantissa exactly, so the result is < 1.
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

int64_t jitter(int64_t base, double spread, random_source& rng) {
  auto factor = 1.0 - spread + 2.0 * spread * rng.uniform();
  return std::llround(static_cast<double>(base) * factor);
}

} // namespace btcstream

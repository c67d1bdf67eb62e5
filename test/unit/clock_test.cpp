#include "core/clock.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

using namespace btcstream;

namespace {

// Returns the values it was given, in order.
struct scripted_random final : random_source {
  std::vector<double> values;
  size_t next = 0;
  explicit scripted_random(std::vector<double> xs) : values(std::move(xs)) {}
  double uniform() override { return values.at(next++); }
};

} // namespace

TEST_CASE("the system wall clock reads the real time in milliseconds") {
  using namespace std::chrono;
  system_wall_clock clock;
  auto before
      = duration_cast<milliseconds>(system_clock::now().time_since_epoch())
            .count();
  auto now = clock.now_ms();
  auto after
      = duration_cast<milliseconds>(system_clock::now().time_since_epoch())
            .count();
  CHECK(now >= before);
  CHECK(now <= after);
  // 2020-01-01T00:00:00Z: catches seconds or microseconds by mistake.
  CHECK(now > 1'577'836'800'000);
  CHECK(now < 32'503'680'000'000); // year 3000
}

TEST_CASE("seeded random matches the splitmix64 reference output") {
  // splitmix64 with seed 0 first yields 0xe220a8397b1dcdaf.
  seeded_random rng{0};
  CHECK(rng.uniform()
        == static_cast<double>(0xe220a8397b1dcdafULL >> 11) * 0x1.0p-53);
}

TEST_CASE("seeded random repeats its sequence for the same seed") {
  seeded_random a{42};
  seeded_random b{42};
  seeded_random c{43};
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    auto x = a.uniform();
    CHECK(x == b.uniform());
    differs = differs || x != c.uniform();
  }
  CHECK(differs);
}

TEST_CASE("seeded random stays in [0, 1) and is roughly uniform") {
  seeded_random rng{7};
  constexpr int n = 100'000;
  double sum = 0;
  double lo = 1;
  double hi = 0;
  int buckets[10] = {};
  for (int i = 0; i < n; ++i) {
    auto x = rng.uniform();
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
    if (x >= 0 && x < 1)
      ++buckets[static_cast<int>(x * 10)];
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(sum / n == doctest::Approx(0.5).epsilon(0.01));
  for (auto b : buckets)
    CHECK(b == doctest::Approx(n / 10).epsilon(0.05));
}

TEST_CASE("jitter scales the base by a factor in [1 - spread, 1 + spread)") {
  scripted_random rng{{0.0, 0.5, 0.25, 0.999999}};
  CHECK(jitter(3000, 0.2, rng) == 2400);
  CHECK(jitter(3000, 0.2, rng) == 3000);
  CHECK(jitter(250, 0.2, rng) == 225);
  CHECK(jitter(3000, 0.2, rng) == 3600); // 3599.9988 rounds to nearest
}

TEST_CASE("jitter without spread returns the base") {
  scripted_random rng{{0.0, 0.7}};
  CHECK(jitter(3000, 0.0, rng) == 3000);
  CHECK(jitter(0, 0.0, rng) == 0);
}

TEST_CASE("jitter of the default retry stays within 20 percent") {
  seeded_random rng{1};
  int64_t lo = 3000;
  int64_t hi = 3000;
  for (int i = 0; i < 10'000; ++i) {
    auto v = jitter(3000, 0.2, rng);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo >= 2400);
  CHECK(hi <= 3600);
  // Both ends are reached: the spread is used, not just its middle.
  CHECK(lo < 2410);
  CHECK(hi > 3590);
}

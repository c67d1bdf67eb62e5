// core_pingpong: how long one cache line takes to go from one CPU to
// another and back. Two threads, pinned to two CPUs, pass a counter back
// and forth through one atomic; the mean round trip is printed. On these
// VMs it tells which of the host's placements the two vCPUs have at the
// moment (docs/performance.md, "Scaling with cores"): every cost that a
// second scheduler worker adds is a multiple of it.
//
//   core_pingpong [--cpus A B] [--trips 200000]
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace {

bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

/// The value after `flag`, or `fallback`; exits on a bad number.
long arg(int argc, char** argv, const char* flag, int skip, long fallback) {
  for (int i = 1; i + 1 + skip < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) {
      char* end = nullptr;
      long v = std::strtol(argv[i + 1 + skip], &end, 10);
      if (*end != '\0' || v < 0) {
        std::fprintf(stderr, "core_pingpong: bad value for %s\n", flag);
        std::exit(2);
      }
      return v;
    }
  return fallback;
}

alignas(64) std::atomic<long> ball{0};

} // namespace

int main(int argc, char** argv) {
  int a = static_cast<int>(arg(argc, argv, "--cpus", 0, 0));
  int b = static_cast<int>(arg(argc, argv, "--cpus", 1, 1));
  long trips = arg(argc, argv, "--trips", 0, 200000);
  if (trips == 0) {
    std::fprintf(stderr, "core_pingpong: --trips must be > 0\n");
    return 2;
  }
  // On one CPU each trip would wait for the scheduler to switch threads.
  if (a == b) {
    std::fprintf(stderr, "core_pingpong: --cpus needs two different CPUs\n");
    return 2;
  }
  bool there = false; // read after join
  std::thread other{[&] {
    there = pin(b);
    for (long i = 0; i < trips; ++i) {
      while (ball.load(std::memory_order_acquire) != 2 * i + 1) {
      }
      ball.store(2 * i + 2, std::memory_order_release);
    }
  }};
  bool here = pin(a);
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < trips; ++i) {
    ball.store(2 * i + 1, std::memory_order_release);
    while (ball.load(std::memory_order_acquire) != 2 * i + 2) {
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  other.join();
  if (!here || !there) {
    std::fprintf(stderr, "core_pingpong: cannot pin to CPUs %d and %d\n", a, b);
    return 1;
  }
  std::printf("core_pingpong: CPUs %d and %d: round trip %.1f ns (mean of "
              "%ld)\n",
              a, b,
              std::chrono::duration<double, std::nano>(t1 - t0).count()
                  / static_cast<double>(trips),
              trips);
  return 0;
}

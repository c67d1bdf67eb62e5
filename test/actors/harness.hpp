#pragma once

// A deterministic harness for btcstream's actors: CAF's test_coordinator
// (no threads, no sleeps), a manual wall clock that moves with CAF's test
// clock, a fake upstream answered by hand and a recording, stallable sink.

#include "actors/actors.hpp"
#include "core/clock.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/upstream_client.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace btcstream::test {

/// 2025-11-26T18:45:17Z: a plausible "now" for every test.
inline constexpr int64_t start_ms = 1764182717000;

/// A wall clock the test moves by hand (with `fixture::advance`).
struct manual_clock final : wall_clock {
  int64_t now = start_ms;
  int64_t now_ms() const override { return now; }
};

/// A random source that always draws `value`: 0.5 makes a ±20 % jitter
/// factor exactly 1, so retry times are round numbers.
struct fixed_random final : random_source {
  double value = 0.5;
  double uniform() override { return value; }
};

/// Records what a connection writes; can refuse deliveries to play a
/// stalled client (the actor does not know; only the session would).
struct recording_sink final : frame_sink {
  /// Every frame's bytes, in the order written.
  std::vector<std::string> frames;
  /// Whether each frame was live (counted) or a replay.
  std::vector<bool> live;
  bool closed = false;

  /// How the actor ended the stream, if it did.
  std::optional<end_cause> closed_with;

  void deliver(const frame_ptr& f, int64_t stored_ns) override;
  void replay(std::vector<frame_ptr> fs) override;
  void close(end_cause why) override {
    closed = true;
    if (!closed_with)
      closed_with = why;
  }

  /// The ids of the update frames written, in order.
  std::vector<uint64_t> ids() const;
  /// How many frames equal `bytes`.
  size_t count(const std::string& bytes) const;
};

/// The upstream, answered by the test: each fetch waits until `answer`.
struct fake_upstream final : upstream_client {
  std::deque<std::function<void(fetch_result)>> pending;
  size_t requests = 0;
  bool stopped = false;

  void fetch(std::function<void(fetch_result)> done) override;
  void stop() override { stopped = true; }

  /// Answers the oldest pending request; returns false if none is pending.
  bool answer(fetch_result r);
  /// Answers with a valid CoinDesk body for `price`.
  bool answer_price(double price);
};

/// A CoinDesk success body for BTC-USD.
std::string coindesk_body(double price);

/// An actor system on the testing scheduler. Actors registered with
/// `stop_at_end` are killed before the system goes (periodic timers would
/// otherwise keep it alive).
struct fixture {
  fixture();
  ~fixture();

  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

  /// Runs every pending job (no timers).
  size_t run() { return sched->run(); }
  /// Runs exactly one job of `who`.
  template<class Handle>
  void step(const Handle& who) {
    if (!sched->prioritize(who))
      throw std::logic_error("no job for this actor");
    sched->run_once();
  }
  /// Moves both clocks forward, fires due timers, runs every job.
  void advance(std::chrono::milliseconds d);
  /// Remembers an actor to kill at the end of the test.
  template<class Handle>
  Handle stop_at_end(Handle h) {
    to_stop.push_back(caf::actor_cast<caf::actor>(h));
    return h;
  }
  /// Runs pending jobs in an order drawn from `seed`: explores the
  /// interleavings of independent actors.
  void run_shuffled(uint64_t seed);

  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<manual_clock> clock = std::make_shared<manual_clock>();
  /// The metrics every actor under test writes to.
  std::shared_ptr<metrics> stats = std::make_shared<metrics>();
  std::vector<caf::actor> to_stop;
};

/// A valid update at `start_ms + offset_ms` with id = its timestamp.
update make_update(int64_t offset_ms, double price);

/// A broadcaster and a buffer (the real ones), with helpers to store update
/// number n (id and ts = start_ms + n, price 1000 + n) and to connect
/// recording clients.
struct core_fixture : fixture {
  /// @param lag_wait the buffer's wait for a resume id ahead of its log
  /// (cluster mode).
  explicit core_fixture(size_t capacity = 100,
                        caf::timespan lag_wait = caf::timespan::zero());

  /// Stores update n and runs everything it causes.
  void publish(int n);
  /// Stores update n as a log entry whose predecessor is `prev` (a number
  /// n, or 0 for none) and runs everything it causes (cluster mode).
  void ingest(int n, int prev);
  /// Sends update n to the buffer without running anything.
  void send_update(int n);
  /// Spawns a connection writing to `sink`, without running it. Keeps the
  /// sink alive until the end of the test, as a session keeps itself: the
  /// actor holds it weakly.
  connection_actor spawn_connection(resume_point from,
                                    std::shared_ptr<recording_sink> sink);
  /// Spawns a connection with a fresh sink and runs it.
  std::pair<connection_actor, std::shared_ptr<recording_sink>>
  connect(resume_point from);

  /// A resume point after `id`, as a client would give it.
  static resume_point after(uint64_t id);
  /// The id of update n, and of updates from..to.
  static uint64_t id(int n) { return static_cast<uint64_t>(start_ms + n); }
  static std::vector<uint64_t> ids(int from, int to);

  broadcaster_actor b;
  buffer_actor buf;
  /// --max-stream-age of the connections spawned from now on (zero: off).
  caf::timespan max_age = caf::timespan::zero();
  /// Every sink given to spawn_connection.
  std::vector<std::shared_ptr<recording_sink>> sinks;
};

/// Sends a request from a throwaway actor, runs the system, and returns the
/// reply (or nothing on error).
template<class T, class Handle, class... Ts>
std::optional<T> ask(fixture& f, const Handle& h, Ts... xs) {
  auto out = std::make_shared<std::optional<T>>();
  // `out` travels as a spawn argument: CAF 0.17 dereferences a null tuple
  // when a function actor is spawned without arguments (UBSan reports it).
  f.sys->spawn(
      [=](caf::event_based_actor* self, std::shared_ptr<std::optional<T>> res) {
        self->request(h, std::chrono::seconds{10}, xs...)
            .then(
                [res](T& r) {
                  *res = std::move(r);
                },
                [](caf::error&) {});
      },
      out);
  f.run();
  return *out;
}

} // namespace btcstream::test

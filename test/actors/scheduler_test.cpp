// btcstream's work-sharing scheduler on real threads (not the test
// coordinator): every message is handled once, fan-outs larger than a batch
// arrive whole, messages from foreign threads and delayed messages arrive,
// a fan-out's counts kept on a worker reach its probe, an actor with several
// messages handles them in one turn, and a system with work still queued
// shuts down cleanly. Waits are bounded receives, never sleeps; TSan runs
// this file (scripts/tsan).

#include "actors/broadcaster.hpp"
#include "actors/scheduler.hpp"
#include "core/metrics.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <functional>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

struct system_with_scheduler {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  explicit system_with_scheduler(size_t workers) {
    cfg.set("scheduler.max-threads", workers);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    use_sharing_scheduler(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

/// Counts what it receives and tells `done` once it has `expected`.
caf::behavior counter(caf::event_based_actor* self, int expected,
                      caf::actor done) {
  auto seen = std::make_shared<int>(0);
  return {
      [=](int) {
        if (++*seen == expected)
          self->send(done, caf::atom("done"));
      },
  };
}

/// Sends one int to each of `targets` per message it gets, as itself: the
/// receivers are scheduled through this worker's batch (exec_later).
caf::behavior fan_out(caf::event_based_actor* self,
                      std::vector<caf::actor> targets) {
  return {
      [self, targets](int x) {
        for (auto& t : targets)
          self->send(t, x);
      },
  };
}

/// Two handlers that each wait (bounded) until both are running: they meet
/// only if two workers run them at the same time.
struct rendezvous {
  std::mutex mtx;
  std::condition_variable cv;
  int arrived = 0;

  /// Whether the other one arrived within the bound.
  bool meet() {
    std::unique_lock<std::mutex> guard{mtx};
    ++arrived;
    cv.notify_all();
    return cv.wait_for(guard, 10s, [this] {
      return arrived >= 2;
    });
  }
};

} // namespace

TEST_CASE("the scheduler takes the place of CAF's, with the configured "
          "workers") {
  system_with_scheduler s{3};
  auto& sched = s.sys->scheduler();
  CHECK(sched.num_workers() == 3);
  // Ours, not one of CAF's coordinator<Policy>.
  std::string type = typeid(sched).name();
  CHECK(type.find("btcstream") != std::string::npos);
}

TEST_CASE("a fan-out far larger than a batch reaches every receiver, every "
          "time") {
  for (size_t workers : {1, 2, 4}) {
    CAPTURE(workers);
    system_with_scheduler s{workers};
    caf::scoped_actor self{*s.sys};
    constexpr int receivers = 1000;
    constexpr int rounds = 20;
    std::vector<caf::actor> targets;
    for (int i = 0; i < receivers; ++i)
      targets.push_back(s.sys->spawn(counter, rounds, caf::actor{self}));
    auto source = s.sys->spawn(fan_out, targets);
    for (int r = 0; r < rounds; ++r)
      self->send(source, r);
    int done = 0;
    self->receive_for(done, receivers)(
        [](caf::atom_value) {},
        caf::after(10s) >>
            [&] {
              FAIL("only " << done << " of " << receivers << " receivers done");
            });
    CHECK(done == receivers);
    self->send_exit(source, caf::exit_reason::user_shutdown);
    for (auto& t : targets)
      self->send_exit(t, caf::exit_reason::user_shutdown);
  }
}

TEST_CASE("a worker takes no more than its share of the queued jobs") {
  // A worker takes up to 8 jobs at once, but of 2 queued jobs and 2
  // workers only one: the other worker runs the other job meanwhile. (A
  // worker that took both would wait in the first for the second, which
  // it alone holds, until the bound.)
  system_with_scheduler s{2};
  caf::scoped_actor self{*s.sys};
  auto meeting = std::make_shared<rendezvous>();
  std::vector<caf::actor> pair;
  // Spawned lazily: an actor's launch job, queued at spawn, runs the first
  // message in the actor's place if it is still queued when that message
  // arrives; a worker that took both launch jobs from the queue would then
  // hold the second while the first waits.
  for (int i = 0; i < 2; ++i)
    pair.push_back(s.sys->spawn<caf::lazy_init>(
        [meeting](caf::event_based_actor*, caf::actor report) -> caf::behavior {
          return {[meeting, report](int) {
            caf::anon_send(report, meeting->meet());
          }};
        },
        caf::actor{self}));
  // Sent by one actor in one turn: both jobs reach the queue in one batch.
  auto source = s.sys->spawn(fan_out, pair);
  self->send(source, 1);
  int met = 0;
  for (int i = 0; i < 2; ++i)
    self->receive(
        [&](bool ok) {
          met += ok ? 1 : 0;
        },
        caf::after(30s) >>
            [] {
              FAIL("no report");
            });
  CHECK(met == 2);
  self->send_exit(source, caf::exit_reason::user_shutdown);
  for (auto& a : pair)
    self->send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("a fan-out's counts, kept on a worker, reach its probe before the "
          "worker takes more work") {
  // One worker: the check below is taken after every receiver has run.
  system_with_scheduler s{1};
  caf::scoped_actor self{*s.sys};
  constexpr int receivers = 100; // many takes of 8
  auto m = std::make_shared<metrics>();
  auto probe = std::make_shared<fanout_probe>(receivers, steady_now_ns(), m);
  std::vector<caf::actor> targets;
  for (int i = 0; i < receivers; ++i)
    targets.push_back(s.sys->spawn(
        [probe](caf::event_based_actor*, caf::actor report) -> caf::behavior {
          return {[probe, report](int) {
            fanout_probe::handed(probe);
            caf::anon_send(report, caf::atom("handed"));
          }};
        },
        caf::actor{self}));
  auto source = s.sys->spawn(fan_out, targets);
  self->send(source, 1);
  int handed = 0;
  self->receive_for(handed, receivers)(
      [](caf::atom_value) {},
      caf::after(10s) >>
          [&] {
            FAIL("only " << handed << " of " << receivers << " handed on");
          });
  // The metrics as an argument: CAF 0.17 binds a null pointer for a spawn
  // without arguments, which UBSan reports.
  auto check = s.sys->spawn(
      [](caf::event_based_actor*, std::shared_ptr<metrics> m) -> caf::behavior {
        return {[m](int) -> uint64_t {
          return m->event_fanout.count();
        }};
      },
      m);
  uint64_t timed = 0;
  self->request(check, 10s, 0)
      .receive(
          [&](uint64_t n) {
            timed = n;
          },
          [](caf::error&) {
            FAIL("no answer");
          });
  CHECK_EQ(timed, 1u);
  self->send_exit(source, caf::exit_reason::user_shutdown);
  self->send_exit(check, caf::exit_reason::user_shutdown);
  for (auto& t : targets)
    self->send_exit(t, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor with several messages waiting handles them all in its "
          "turn, before the next job") {
  // A worker resumes an actor for one message first (the fan-out's case);
  // one with more waiting must go on at once, not to the back of the
  // queue behind every other job (after a mass reconnect, the buffer with
  // 10,000 history requests).
  system_with_scheduler s{1};
  caf::scoped_actor self{*s.sys};
  struct gate_state {
    std::mutex mtx;
    std::condition_variable cv;
    bool open = false;
    std::string log; // written by the one worker
  };
  auto g = std::make_shared<gate_state>();
  // Every actor here is spawned lazily: a spawned actor is otherwise queued
  // at once to initialise, and a launch job still queued when its first
  // message arrives runs that message in its place. With b's launch behind
  // a's but ahead of the gate's message, b1 came first (seen under ASan).
  // Holds the only worker until the test has queued everything below.
  auto gate = s.sys->spawn<caf::lazy_init>(
      [](caf::event_based_actor*,
         std::shared_ptr<gate_state> g) -> caf::behavior {
        return {[g](int) {
          std::unique_lock<std::mutex> guard{g->mtx};
          g->cv.wait_for(guard, 10s, [&] {
            return g->open;
          });
        }};
      },
      g);
  auto recorder = [](caf::event_based_actor*, std::shared_ptr<gate_state> g,
                     std::string name, caf::actor report) -> caf::behavior {
    return {[g, name, report](int x) {
      {
        std::lock_guard<std::mutex> guard{g->mtx};
        g->log += name + std::to_string(x) + " ";
      }
      caf::anon_send(report, caf::atom("done"));
    }};
  };
  auto a = s.sys->spawn<caf::lazy_init>(recorder, g, std::string{"a"},
                                        caf::actor{self});
  auto b = s.sys->spawn<caf::lazy_init>(recorder, g, std::string{"b"},
                                        caf::actor{self});
  self->send(gate, 0);
  // a's job, then b's: a has three messages when it is resumed.
  for (int i = 1; i <= 3; ++i)
    self->send(a, i);
  self->send(b, 1);
  constexpr int messages = 4;
  {
    std::lock_guard<std::mutex> guard{g->mtx};
    g->open = true;
  }
  g->cv.notify_all();
  int done = 0;
  self->receive_for(done, messages)(
      [](caf::atom_value) {},
      caf::after(10s) >>
          [&] {
            FAIL("only " << done << " of " << messages << " handled");
          });
  std::string log;
  {
    std::lock_guard<std::mutex> guard{g->mtx};
    log = g->log;
  }
  CHECK_EQ(log, "a1 a2 a3 b1 ");
  for (auto& x : {gate, a, b})
    self->send_exit(x, caf::exit_reason::user_shutdown);
}

TEST_CASE("messages from threads that are not workers, and delayed "
          "messages, arrive") {
  system_with_scheduler s{2};
  caf::scoped_actor self{*s.sys};
  constexpr int per_thread = 5000;
  auto c = s.sys->spawn(counter, 4 * per_thread, caf::actor{self});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        caf::anon_send(c, i);
    });
  for (auto& t : threads)
    t.join();
  bool counted = false;
  self->receive(
      [&](caf::atom_value) {
        counted = true;
      },
      caf::after(10s) >>
          [] {
            FAIL("the counter never finished");
          });
  CHECK(counted);
  // The clock thread: a delayed message comes, after its delay.
  auto t0 = std::chrono::steady_clock::now();
  self->delayed_send(self, 20ms, caf::atom("later"));
  bool later = false;
  self->receive(
      [&](caf::atom_value) {
        later = true;
      },
      caf::after(10s) >>
          [] {
            FAIL("no delayed message");
          });
  CHECK(later);
  CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
  self->send_exit(c, caf::exit_reason::user_shutdown);
}

TEST_CASE("request and response between actors on the workers") {
  system_with_scheduler s{2};
  caf::scoped_actor self{*s.sys};
  // (CAF 0.17 dereferences a null argument tuple when a function-based
  // actor takes no argument, which UBSan reports: every actor here takes
  // one.)
  auto doubler = s.sys->spawn(
      [](caf::event_based_actor*, int factor) -> caf::behavior {
        return {[factor](int x) {
          return x * factor;
        }};
      },
      2);
  int got = 0;
  self->request(doubler, 5s, 21)
      .receive(
          [&](int x) {
            got = x;
          },
          [](caf::error&) {
            FAIL("no answer");
          });
  CHECK(got == 42);
  self->send_exit(doubler, caf::exit_reason::user_shutdown);
}

TEST_CASE("an actor that quits with a long mailbox is released when the "
          "system shuts down") {
  std::weak_ptr<int> alive;
  {
    system_with_scheduler s{2};
    auto token = std::make_shared<int>(1);
    alive = token;
    // A slow receiver with a long mailbox, never waited for: its state
    // (holding the token) must be released at shutdown.
    auto slow = s.sys->spawn(
        [](caf::event_based_actor*,
           std::shared_ptr<int> held) -> caf::behavior {
          return {[held](int) {}};
        },
        token);
    for (int i = 0; i < 10000; ++i)
      caf::anon_send(slow, i);
    caf::anon_send_exit(slow, caf::exit_reason::user_shutdown);
  }
  CHECK(alive.expired());
}

namespace {

uint64_t this_thread_hash() {
  return std::hash<std::thread::id>{}(std::this_thread::get_id());
}

/// Counts what it receives, and whether it ran on the thread named in it.
caf::behavior woken_receiver(caf::event_based_actor*,
                             std::shared_ptr<std::atomic<int>> ran,
                             std::shared_ptr<std::atomic<int>> elsewhere) {
  return {
      [ran, elsewhere](uint64_t sender_thread) {
        if (sender_thread != this_thread_hash())
          ++*elsewhere;
        ++*ran;
      },
  };
}

} // namespace

TEST_CASE("the actors a fan-out wakes through run_woken_here run on its "
          "worker, before run_all returns") {
  system_with_scheduler s{2};
  caf::scoped_actor self{*s.sys};
  constexpr int receivers = 500;
  auto ran = std::make_shared<std::atomic<int>>(0);
  auto elsewhere = std::make_shared<std::atomic<int>>(0);
  std::vector<caf::actor> targets;
  for (int i = 0; i < receivers; ++i)
    // Lazily: a receiver waits for its first message from the start, as a
    // connection actor does; one still being launched would not be woken.
    targets.push_back(
        s.sys->spawn<caf::lazy_init>(woken_receiver, ran, elsewhere));
  // Replies with how many receivers had run when run_all returned.
  auto source = s.sys->spawn(
      [](caf::event_based_actor* src,
         std::vector<caf::actor> to) -> caf::behavior {
        return {[src, to](int) -> int {
          CHECK(on_scheduler_worker());
          run_woken_here woken{src->context(), to.size()};
          for (auto& t : to)
            caf::actor_cast<caf::abstract_actor*>(t)->enqueue(
                caf::make_mailbox_element(nullptr, caf::make_message_id(), {},
                                          this_thread_hash()),
                &woken);
          woken.run_all();
          return 0;
        }};
      },
      targets);
  for (int round = 1; round <= 3; ++round) {
    CAPTURE(round);
    self->request(source, 10s, 0)
        .receive([](int) {},
                 [](caf::error&) {
                   FAIL("no answer");
                 });
    CHECK_EQ(ran->load(), round * receivers);
    CHECK_EQ(elsewhere->load(), 0);
  }
  CHECK_FALSE(on_scheduler_worker());
  self->send_exit(source, caf::exit_reason::user_shutdown);
  for (auto& t : targets)
    self->send_exit(t, caf::exit_reason::user_shutdown);
}

TEST_CASE("the broadcaster's shards on real workers: every subscriber gets "
          "every update once, in order") {
  for (size_t workers : {1, 2, 4}) {
    CAPTURE(workers);
    system_with_scheduler s{workers};
    caf::scoped_actor self{*s.sys};
    constexpr int subscribers = 1000; // 16 shards
    constexpr int updates = 50;
    auto out_of_order = std::make_shared<std::atomic<int>>(0);
    auto b = s.sys->spawn(broadcaster, caf::timespan{1h},
                          std::make_shared<metrics>());
    std::vector<connection_actor> conns;
    for (int i = 0; i < subscribers; ++i) {
      auto c = s.sys->spawn(
          [](connection_actor::pointer, caf::actor done,
             std::shared_ptr<std::atomic<int>> bad)
              -> connection_actor::behavior_type {
            auto last = std::make_shared<uint64_t>(0);
            auto seen = std::make_shared<int>(0);
            return {
                [=](atom::live, const stored& x) {
                  if (x.u.id != *last + 1)
                    ++*bad;
                  *last = x.u.id;
                  if (++*seen == updates)
                    caf::anon_send(done, caf::atom("done"));
                },
                [](atom::heartbeat) {},
                [](atom::session, session_state) {},
                [](atom::retire) {},
                [](atom::ended, const caf::error&) {},
            };
          },
          caf::actor{self}, out_of_order);
      self->request(b, 10s, atom::subscribe_v, c)
          .receive([](uint64_t) {},
                   [](caf::error&) {
                     FAIL("no subscription");
                   });
      conns.push_back(c);
    }
    for (uint64_t id = 1; id <= updates; ++id) {
      stored x;
      x.u.id = id;
      caf::anon_send(b, atom::publish_v, std::move(x));
    }
    int done = 0;
    self->receive_for(done, subscribers)(
        [](caf::atom_value) {}, caf::after(10s) >>
                                    [&] {
                                      FAIL("only "
                                           << done << " of " << subscribers
                                           << " subscribers got every update");
                                    });
    CHECK_EQ(done, subscribers);
    CHECK_EQ(out_of_order->load(), 0);
    self->send_exit(b, caf::exit_reason::user_shutdown);
    for (auto& c : conns)
      self->send_exit(c, caf::exit_reason::user_shutdown);
  }
}

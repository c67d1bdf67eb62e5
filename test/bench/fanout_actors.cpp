// fanout_actors: the actor side of the fan-out alone, without sockets. The
// real buffer, broadcaster and connection actors on btcstream's scheduler;
// each connection's sink only counts its frames. It measures what
// `compare.py` cannot separate from the kernel's writes: the CPU per
// delivered event of the hand-off itself (CAF mailbox, activation,
// scheduler, seam), with little noise, so that a change to that path can
// be compared in a minute. One update at a time, as the service (each
// fan-out ends before the next update). Exits 1 if any connection did not
// get every update exactly once.
//
// `--receiver` puts another receiver in the connection actor's place, to
// separate what a delivery costs in CAF from what it costs in ours:
// `event-based`, a CAF event-based actor whose only handler hands the
// frame to the sink and counts it for the probe (what the connection actor
// was before it was written by hand, minus the seam); `minimal`, the same
// handler in the least actor CAF can deliver to (minimal_receiver.hpp).
//
//   fanout_actors [--clients 10000] [--events 50] [--threads 2] [--rounds 5]
//                 [--receiver connection|event-based|minimal]
#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/connection.hpp"
#include "actors/scheduler.hpp"
#include "core/clock.hpp"
#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "minimal_receiver.hpp"

#include <caf/all.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace btcstream;

/// Counts frames; the connection actor is its only caller. A frame that
/// arrives before the (empty) history reply comes through `replay`.
struct counting_sink final : frame_sink {
  uint64_t frames = 0;
  uint64_t bytes = 0;
  void deliver(const frame_ptr& f, int64_t) override {
    ++frames;
    bytes += f->size();
  }
  void replay(std::vector<frame_ptr> fs) override { frames += fs.size(); }
  void close(end_cause) override {}
};

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) {
    return t.tv_sec + t.tv_usec / 1e6;
  };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

const char* text_arg(int argc, char** argv, const char* name,
                     const char* dflt) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0)
      return argv[i + 1];
  return dflt;
}

size_t arg(int argc, char** argv, const char* name, size_t dflt) {
  return std::strtoul(text_arg(argc, argv, name, std::to_string(dflt).c_str()),
                      nullptr, 10);
}

/// A receiver in the connection actor's place (`--receiver event-based`).
caf::behavior event_based_receiver(caf::event_based_actor* self,
                                   std::shared_ptr<frame_sink> sink,
                                   broadcaster_actor b) {
  caf::anon_send(b, atom::subscribe_v, caf::actor_cast<connection_actor>(self));
  return {
      [sink](atom::live, const stored& s) {
        sink->deliver(s.frame, s.stored_ns);
        if (s.probe)
          fanout_probe::handed(s.probe);
      },
      [self](atom::ended, const caf::error&) {
        self->quit();
      },
  };
}

/// A receiver in the connection actor's place (`--receiver minimal`).
caf::actor spawn_minimal_receiver(caf::actor_system& sys,
                                  std::shared_ptr<frame_sink> sink,
                                  const broadcaster_actor& b) {
  caf::actor_config cfg;
  auto r = caf::make_actor<bench::minimal_receiver, caf::actor>(
      sys.next_actor_id(), sys.node(), &sys, cfg, std::move(sink));
  caf::anon_send(b, atom::subscribe_v, caf::actor_cast<connection_actor>(r));
  return r;
}

} // namespace

int main(int argc, char** argv) {
  auto clients = arg(argc, argv, "--clients", 10000);
  auto events = arg(argc, argv, "--events", 50);
  auto threads = arg(argc, argv, "--threads", 2);
  auto rounds = arg(argc, argv, "--rounds", 5);
  std::string receiver = text_arg(argc, argv, "--receiver", "connection");
  if (clients == 0 || events == 0 || threads == 0 || rounds == 0) {
    std::fprintf(stderr, "fanout_actors: every count must be > 0\n");
    return 2;
  }
  if (receiver != "connection" && receiver != "event-based"
      && receiver != "minimal") {
    std::fprintf(stderr, "fanout_actors: --receiver must be connection, "
                         "event-based or minimal\n");
    return 2;
  }

  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  use_sharing_scheduler(cfg);
  cfg.set("scheduler.max-threads", threads);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  auto stats = std::make_shared<metrics>();
  auto clock = std::make_shared<system_wall_clock>();
  auto b = sys.spawn(broadcaster, caf::timespan{std::chrono::hours{1}}, stats);
  auto buf = sys.spawn(buffer, size_t{1000}, std::chrono::milliseconds{3600000},
                       b, clock, stats, caf::timespan::zero());

  std::vector<std::shared_ptr<counting_sink>> sinks;
  sinks.reserve(clients);
  // Minimal receivers are not registered with the system, which would
  // wait for them at shutdown: these references keep them alive until
  // the broadcaster has ended them.
  std::vector<caf::actor> minimal_receivers;
  for (size_t i = 0; i < clients; ++i) {
    sinks.push_back(std::make_shared<counting_sink>());
    if (receiver == "event-based")
      sys.spawn(event_based_receiver, sinks.back(), b);
    else if (receiver == "minimal")
      minimal_receivers.push_back(spawn_minimal_receiver(sys, sinks.back(), b));
    else
      spawn_connection(sys, sinks.back(), resume_point{}, b, buf, size_t{64},
                       stats, caf::timespan::zero());
  }
  caf::scoped_actor self{sys};
  for (;;) { // until every connection has subscribed
    uint64_t n = 0;
    self->request(b, caf::infinite, atom::ping_v)
        .receive(
            [&](uint64_t x) {
              n = x;
            },
            [](caf::error&) {});
    if (n == clients)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }

  std::vector<double> ns_per_delivery;
  std::vector<double> fanout_ms;
  uint64_t id = static_cast<uint64_t>(clock->now_ms());
  uint64_t published = 0;
  for (size_t r = 0; r < rounds; ++r) {
    double wall = 0;
    auto cpu0 = cpu_seconds();
    for (size_t e = 0; e < events; ++e) {
      auto t0 = std::chrono::steady_clock::now();
      ++id;
      self->send(buf, atom::publish_v,
                 update{id, static_cast<int64_t>(id), 50000.0 + e});
      ++published;
      while (stats->event_fanout.count() < published)
        std::this_thread::sleep_for(std::chrono::microseconds{200});
      wall += std::chrono::duration<double>(std::chrono::steady_clock::now()
                                            - t0)
                  .count();
    }
    auto cpu = cpu_seconds() - cpu0;
    ns_per_delivery.push_back(cpu * 1e9
                              / static_cast<double>(clients * events));
    fanout_ms.push_back(wall * 1e3 / static_cast<double>(events));
  }

  // Every frame reached its sink before the probe counted the fan-out (the
  // probe counts after the sink call), so the counts are final here.
  size_t wrong = 0;
  for (auto& s : sinks)
    if (s->frames != published)
      ++wrong;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("fanout_actors: %zu clients (%s), %zu threads, %zu x %zu "
              "events: CPU %.0f ns per delivered event (median of rounds; "
              "min %.0f, max %.0f), fan-out %.2f ms; %zu connections with a "
              "wrong count\n",
              clients, receiver.c_str(), threads, rounds, events,
              median(ns_per_delivery),
              *std::min_element(ns_per_delivery.begin(), ns_per_delivery.end()),
              *std::max_element(ns_per_delivery.begin(), ns_per_delivery.end()),
              median(fanout_ms), wrong);
  self->send_exit(buf, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
  return wrong == 0 ? 0 : 1;
}

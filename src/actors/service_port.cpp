#include "actors/service_port.hpp"

#include <caf/all.hpp>

#include <atomic>

namespace btcstream {

namespace {

using latest_callback = std::function<void(latest_answer)>;
using updates_callback
    = std::function<void(std::optional<std::vector<update>>)>;
using health_callback = std::function<void(bool)>;
using leader_callback = std::function<void(std::string)>;

// The callbacks travel as spawn arguments (never captured alone): CAF 0.17
// mishandles function actors spawned without arguments.

void ask_latest(caf::event_based_actor* self, buffer_actor buf,
                caf::timespan timeout, latest_callback done) {
  self->request(buf, timeout, atom::latest_v)
      .then(
          [done](std::optional<update>& u) {
            done(latest_answer{true, std::move(u)});
          },
          [done](caf::error&) {
            done(latest_answer{false, std::nullopt});
          });
}

void ask_updates(caf::event_based_actor* self, buffer_actor buf,
                 caf::timespan timeout, std::optional<int64_t> since,
                 updates_callback done) {
  self->request(buf, timeout, atom::updates_v, since)
      .then(
          [done](std::vector<update>& us) {
            done(std::move(us));
          },
          [done](caf::error&) {
            done(std::nullopt);
          });
}

void ask_leader(caf::event_based_actor* self, bus_actor bus,
                caf::timespan timeout, leader_callback done) {
  self->request(bus, timeout, atom::leader_v)
      .then(
          [done](std::string& node) {
            done(std::move(node));
          },
          [done](caf::error&) {
            done({});
          });
}

/// Pings the three core actors at once; healthy when all three answer.
void ask_health(caf::event_based_actor* self, fetcher_actor f, buffer_actor b,
                broadcaster_actor br, caf::timespan timeout,
                health_callback done) {
  struct tally {
    int answers = 0;
    bool failed = false;
    health_callback done;
  };
  auto t = std::make_shared<tally>();
  t->done = std::move(done);
  auto ok = [t](uint64_t) {
    if (++t->answers == 3 && !t->failed)
      t->done(true);
  };
  auto fail = [t](caf::error&) {
    if (!t->failed) {
      t->failed = true;
      t->done(false);
    }
  };
  self->request(f, timeout, atom::ping_v).then(ok, fail);
  self->request(b, timeout, atom::ping_v).then(ok, fail);
  self->request(br, timeout, atom::ping_v).then(ok, fail);
}

class actor_service_port final : public service_port {
public:
  actor_service_port(caf::actor_system& sys, fetcher_actor f, buffer_actor b,
                     broadcaster_actor br, bus_actor bus, caf::timespan timeout)
      : sys_(sys),
        fetcher_(std::move(f)),
        buffer_(std::move(b)),
        broadcaster_(std::move(br)),
        bus_(std::move(bus)),
        timeout_(timeout) {}

  void latest(latest_callback done) override {
    sys_.spawn<caf::hidden>(ask_latest, buffer_, timeout_, std::move(done));
  }

  void updates(std::optional<int64_t> since, updates_callback done) override {
    sys_.spawn<caf::hidden>(ask_updates, buffer_, timeout_, since,
                            std::move(done));
  }

  void health(health_callback done) override {
    sys_.spawn<caf::hidden>(ask_health, fetcher_, buffer_, broadcaster_,
                            timeout_, std::move(done));
  }

  void leader(leader_callback done) override {
    if (!bus_) {
      done({});
      return;
    }
    sys_.spawn<caf::hidden>(ask_leader, bus_, timeout_, std::move(done));
  }

  // The ask_* helpers above are hidden: they live for one call and are not
  // counted, so the count is the core actors plus one per client.
  int64_t running_actors() const override {
    return static_cast<int64_t>(sys_.registry().running());
  }

private:
  caf::actor_system& sys_;
  fetcher_actor fetcher_;
  buffer_actor buffer_;
  broadcaster_actor broadcaster_;
  bus_actor bus_;
  caf::timespan timeout_;
};

} // namespace

std::shared_ptr<service_port>
make_service_port(caf::actor_system& sys, fetcher_actor fetcher,
                  buffer_actor buffer, broadcaster_actor broadcaster,
                  bus_actor bus, caf::timespan timeout) {
  return std::make_shared<actor_service_port>(
      sys, std::move(fetcher), std::move(buffer), std::move(broadcaster),
      std::move(bus), timeout);
}

} // namespace btcstream

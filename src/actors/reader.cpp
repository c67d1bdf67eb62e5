#include "actors/reader.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace btcstream {

namespace {

using self_ptr = reader_actor::stateful_pointer<reader_state>;

/// The delay before retry number n (1, 2, ...): 250 ms doubling to 5 s.
std::chrono::milliseconds backoff(reader_state& st) {
  auto shift = std::min<uint64_t>(st.failures - 1, 5);
  auto base = std::min<int64_t>(int64_t{250} << shift, 5000);
  return std::chrono::milliseconds{jitter(base, 0.2, *st.rng)};
}

void failed(self_ptr self, const read_reply& r) {
  auto& st = self->state;
  auto& m = st.stats->cluster;
  m.redis_up.store(0, std::memory_order_relaxed);
  m.count_error(r.failure == log_failure::connect ? redis_op::connect
                                                  : redis_op::read);
  st.catching_up = true; // the next successful read is a backfill
  ++st.failures;
  auto wait = backoff(st);
  if (st.failures == 1 || st.failures % 100 == 0)
    log(log_level::warn,
        "reader cannot read the log (" + std::to_string(st.failures)
            + " in a row, " + to_string(r.failure) + "): " + r.error
            + "; retrying in " + std::to_string(wait.count()) + " ms");
  self->delayed_send(self, wait, atom::read_v);
}

} // namespace

reader_actor::behavior_type
reader(self_ptr self, std::shared_ptr<cluster_log> redis, buffer_actor buffer,
       bus_actor bus, std::shared_ptr<const wall_clock> clock,
       std::shared_ptr<random_source> rng, std::shared_ptr<metrics> stats,
       std::chrono::milliseconds block) {
  if (!redis || !buffer || !bus || !clock || !rng || !stats
      || block.count() <= 0) {
    self->quit(make_error(ec::invalid_argument,
                          "reader needs log, buffer, bus, clock, rng, block"));
    return reader_actor::behavior_type::make_empty_behavior();
  }
  set_default_handlers(self);
  auto& st = self->state;
  st.log = std::move(redis);
  st.buffer = std::move(buffer);
  st.bus = std::move(bus);
  st.clock = std::move(clock);
  st.rng = std::move(rng);
  st.stats = std::move(stats);
  st.block = block;
  self->attach_functor([l = st.log] {
    l->stop();
  });
  self->send(self, atom::read_v);
  return {
      // Start the next read, from itself.
      [self](atom::read) {
        auto& st = self->state;
        caf::actor_addr me = self->address();
        std::optional<std::chrono::milliseconds> block;
        if (!st.catching_up)
          block = st.block;
        st.log->read(st.last, st.batch, block, [me](read_reply r) {
          if (auto h = caf::actor_cast<reader_actor>(me))
            caf::anon_send(h, atom::got_v, std::move(r));
        });
      },
      // The outcome of a read, from the log's callback.
      [self](atom::got, const read_reply& r) {
        auto& st = self->state;
        auto& m = st.stats->cluster;
        if (r.failure != log_failure::none) {
          failed(self, r);
          return;
        }
        if (st.failures > 0)
          log(log_level::info, "reader reaches the log again after "
                                   + std::to_string(st.failures)
                                   + " failed reads");
        st.failures = 0;
        m.redis_up.store(1, std::memory_order_relaxed);
        for (auto& e : r.entries) {
          self->send(st.buffer, atom::ingest_v, e);
          m.ingested.fetch_add(1, std::memory_order_relaxed);
          if (st.catching_up)
            m.backfilled.fetch_add(1, std::memory_order_relaxed);
        }
        if (!r.entries.empty()) {
          auto& newest = r.entries.back();
          self->send(st.bus, atom::ingest_v, newest);
          auto lag_ms
              = std::max<int64_t>(0, st.clock->now_ms() - newest.appended_ms);
          m.ingest_lag_seconds.store(static_cast<double>(lag_ms) / 1000.0,
                                     std::memory_order_relaxed);
        }
        if (r.malformed > 0) {
          for (size_t i = 0; i < r.malformed; ++i)
            m.count_error(redis_op::decode);
          log(log_level::warn, "reader skips " + std::to_string(r.malformed)
                                   + " malformed log entries up to "
                                   + std::to_string(r.last_id));
        }
        st.last = std::max(st.last, r.last_id);
        if (!r.entries.empty())
          st.last = std::max(st.last, r.entries.back().u.id);
        auto read = r.entries.size() + r.malformed;
        if (st.catching_up && read < st.batch) {
          st.catching_up = false;
          if (!m.ready.exchange(true, std::memory_order_relaxed))
            log(log_level::info, "reader has backfilled the log up to "
                                     + std::to_string(st.last) + ": ready");
        }
        self->send(self, atom::read_v);
      },
      // Health round trip.
      [self](atom::ping) -> uint64_t {
        return self->state.last;
      },
  };
}

} // namespace btcstream

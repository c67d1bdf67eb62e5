#include "harness.hpp"

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/connection.hpp"
#include "core/sse.hpp"

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace btcstream::test {

void recording_sink::deliver(const frame_ptr& f, int64_t) {
  frames.emplace_back(f->text());
  live.push_back(true);
}

void recording_sink::replay(std::vector<frame_ptr> fs) {
  for (auto& f : fs) {
    frames.emplace_back(f->text());
    live.push_back(false);
  }
}

std::vector<uint64_t> recording_sink::ids() const {
  std::vector<uint64_t> out;
  for (auto& f : frames)
    if (f.rfind("id: ", 0) == 0)
      out.push_back(std::stoull(f.substr(4, f.find('\n') - 4)));
  return out;
}

size_t recording_sink::count(const std::string& bytes) const {
  size_t n = 0;
  for (auto& f : frames)
    n += f == bytes ? 1 : 0;
  return n;
}

void fake_upstream::fetch(std::function<void(fetch_result)> done) {
  ++requests;
  pending.push_back(std::move(done));
}

bool fake_upstream::answer(fetch_result r) {
  if (pending.empty())
    return false;
  auto done = std::move(pending.front());
  pending.pop_front();
  done(std::move(r));
  return true;
}

bool fake_upstream::answer_price(double price) {
  fetch_result r;
  r.status = 200;
  r.body = coindesk_body(price);
  return answer(std::move(r));
}

std::string coindesk_body(double price) {
  nlohmann::json j;
  j["Data"]["BTC-USD"]["VALUE"] = price;
  j["Data"]["BTC-USD"]["VALUE_LAST_UPDATE_TS"] = start_ms / 1000;
  j["Err"] = nlohmann::json::object();
  return j.dump();
}

fixture::fixture() {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  sys = std::make_unique<caf::actor_system>(cfg);
  sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
}

fixture::~fixture() {
  for (auto& h : to_stop)
    caf::anon_send_exit(h, caf::exit_reason::kill);
  to_stop.clear();
  sched->run();
}

void fixture::advance(std::chrono::milliseconds d) {
  clock->now += d.count();
  sched->advance_time(d);
  sched->run();
}

void fixture::run_shuffled(uint64_t seed) {
  seeded_random rng{seed};
  while (sched->has_job()) {
    auto n = sched->jobs.size();
    auto i = static_cast<size_t>(rng.uniform() * static_cast<double>(n));
    if (i != 0)
      std::rotate(sched->jobs.begin(),
                  sched->jobs.begin() + static_cast<std::ptrdiff_t>(i),
                  sched->jobs.begin() + static_cast<std::ptrdiff_t>(i) + 1);
    sched->run_once();
  }
}

update make_update(int64_t offset_ms, double price) {
  auto ts = start_ms + offset_ms;
  return update{static_cast<uint64_t>(ts), ts, price};
}

core_fixture::core_fixture(size_t capacity, caf::timespan lag_wait) {
  using namespace std::chrono_literals;
  b = stop_at_end(sys->spawn(broadcaster, caf::timespan{15s}, stats));
  buf = stop_at_end(
      sys->spawn(buffer, capacity, 1h, b, clock, stats, lag_wait));
  run();
}

void core_fixture::ingest(int n, int prev) {
  caf::anon_send(buf, atom::ingest_v,
                 log_entry{make_update(n, 1000 + n), prev == 0 ? 0 : id(prev),
                           start_ms + n});
  run();
}

void core_fixture::publish(int n) {
  send_update(n);
  run();
}

void core_fixture::send_update(int n) {
  caf::anon_send(buf, atom::publish_v, make_update(n, 1000 + n));
}

connection_actor
core_fixture::spawn_connection(resume_point from,
                               std::shared_ptr<recording_sink> sink) {
  sinks.push_back(sink);
  return stop_at_end(btcstream::spawn_connection(*sys, std::move(sink),
                                                 std::move(from), b, buf,
                                                 size_t{100}, stats, max_age));
}

std::pair<connection_actor, std::shared_ptr<recording_sink>>
core_fixture::connect(resume_point from) {
  auto sink = std::make_shared<recording_sink>();
  auto c = spawn_connection(std::move(from), sink);
  run();
  return {c, sink};
}

resume_point core_fixture::after(uint64_t id) {
  resume_point r;
  r.what = resume_point::kind::after_id;
  r.id = id;
  r.given = std::to_string(id);
  return r;
}

std::vector<uint64_t> core_fixture::ids(int from, int to) {
  std::vector<uint64_t> out;
  for (int n = from; n <= to; ++n)
    out.push_back(id(n));
  return out;
}

} // namespace btcstream::test

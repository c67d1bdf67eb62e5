// Connection actors whose sink runs jobs (the HTTP session) run on that
// sink's strand, on real threads (not the test coordinator): every turn and
// every frame they deliver happen on the strand, in order; when the sink
// drops a job (its session is gone) or its executor discards one (its I/O
// threads stopped), the actor goes on, on CAF's scheduler. Waits are bounded
// condition waits, never sleeps; TSan runs this file (scripts/tsan).

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/connection.hpp"
#include "actors/scheduler.hpp"
#include "harness.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace btcstream;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

using strand = asio::strand<asio::io_context::executor_type>;

/// How the sink treats the jobs it is given.
enum class jobs { on_strand, dropped };

/// A sink on a strand of a real io_context, like the HTTP session's: records
/// what it is given and whether each call came from its strand.
class strand_sink final : public frame_sink {
public:
  strand_sink(strand s, jobs how) : strand_(std::move(s)), how_(how) {}

  void deliver(frame_ptr f, int64_t) override { record(*f); }
  void replay(std::vector<frame_ptr> fs) override {
    for (auto& f : fs)
      record(*f);
  }
  void close(end_cause why) override {
    std::lock_guard<std::mutex> guard{mtx_};
    note_thread();
    closed_with_ = why;
    cv_.notify_all();
  }

  bool runs_jobs() const override { return true; }
  void schedule(sink_job& j) override {
    ++scheduled;
    if (how_ == jobs::dropped || stopped)
      j.drop();
    else
      asio::post(strand_, posted_job{j});
  }

  /// Waits (at most 10 s) until `n` frames have come; returns the ids of
  /// the update frames among them, in order.
  std::vector<uint64_t> wait_frames(size_t n) {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, 10s, [&] {
      return frames_.size() >= n;
    });
    return ids_;
  }

  /// Waits (at most 10 s) until the stream is closed.
  std::optional<end_cause> wait_closed() {
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_for(guard, 10s, [&] {
      return closed_with_.has_value();
    });
    return closed_with_;
  }

  size_t frames() {
    std::lock_guard<std::mutex> guard{mtx_};
    return frames_.size();
  }

  std::atomic<size_t> on_strand{0};
  std::atomic<size_t> off_strand{0};
  std::atomic<size_t> scheduled{0};
  /// Set before the test destroys the io_context: drop from then on.
  std::atomic<bool> stopped{false};

private:
  void record(const std::string& frame) {
    std::lock_guard<std::mutex> guard{mtx_};
    note_thread();
    frames_.push_back(frame);
    auto at = frame.find("id: ");
    if (at != std::string::npos)
      ids_.push_back(std::stoull(frame.substr(at + 4)));
    cv_.notify_all();
  }
  void note_thread() {
    if (strand_.running_in_this_thread())
      ++on_strand;
    else
      ++off_strand;
  }

  strand strand_;
  jobs how_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::string> frames_;
  std::vector<uint64_t> ids_;
  std::optional<end_cause> closed_with_;
};

/// A real actor system on btcstream's scheduler, with the real broadcaster
/// and buffer.
struct threaded_core {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<metrics> stats = std::make_shared<metrics>();
  broadcaster_actor b;
  buffer_actor buf;

  threaded_core() {
    cfg.set("scheduler.max-threads", size_t{2});
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    use_sharing_scheduler(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    b = sys->spawn(broadcaster, caf::timespan{15s}, stats);
    buf = sys->spawn(buffer, size_t{1000}, 1h, b,
                     std::make_shared<test::manual_clock>(), stats,
                     caf::timespan::zero());
  }

  connection_actor open(std::shared_ptr<frame_sink> sink) {
    return spawn_connection(*sys, std::move(sink), resume_point{}, b, buf,
                            size_t{1000}, stats, caf::timespan::zero());
  }

  void publish(int from, int to) {
    for (int n = from; n <= to; ++n)
      caf::anon_send(buf, atom::publish_v, test::make_update(n, 1000 + n));
  }

  /// Ends the core; the connections follow on the broadcaster's `ended`.
  void stop() {
    caf::anon_send_exit(buf, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
    sys->await_all_actors_done();
  }
};

std::vector<uint64_t> ids(int from, int to) {
  std::vector<uint64_t> out;
  for (int n = from; n <= to; ++n)
    out.push_back(static_cast<uint64_t>(test::start_ms + n));
  return out;
}

/// An io_context run by two threads until `stop`.
struct io_threads {
  asio::io_context ioc{2};
  asio::executor_work_guard<asio::io_context::executor_type> work
      = asio::make_work_guard(ioc);
  std::vector<std::thread> threads;

  io_threads() {
    for (int i = 0; i < 2; ++i)
      threads.emplace_back([this] {
        ioc.run();
      });
  }
  ~io_threads() { stop(); }
  void stop() {
    work.reset();
    ioc.stop();
    for (auto& t : threads)
      if (t.joinable())
        t.join();
  }
};

} // namespace

TEST_CASE("a connection whose sink runs jobs delivers every frame in order, "
          "from the sink's strand") {
  io_threads io;
  threaded_core core;
  auto sink = std::make_shared<strand_sink>(asio::make_strand(io.ioc),
                                            jobs::on_strand);
  core.open(sink);
  // Subscribed once the first update reaches it (a fresh client gets the
  // latest update first, then the live ones).
  core.publish(1, 1);
  REQUIRE(sink->wait_frames(1) == ids(1, 1));
  core.publish(2, 300);
  CHECK(sink->wait_frames(300) == ids(1, 300));
  core.stop();
  CHECK(sink->wait_closed() == end_cause::shutdown);
  CHECK(sink->off_strand == 0);
  CHECK(sink->on_strand == 301);
  // Its turns went through the sink, none through CAF's scheduler.
  CHECK(sink->scheduled > 0);
}

TEST_CASE("a connection whose sink drops its jobs goes on on CAF's "
          "scheduler") {
  io_threads io;
  threaded_core core;
  auto sink
      = std::make_shared<strand_sink>(asio::make_strand(io.ioc), jobs::dropped);
  core.open(sink);
  core.publish(1, 1);
  REQUIRE(sink->wait_frames(1) == ids(1, 1));
  core.publish(2, 300);
  CHECK(sink->wait_frames(300) == ids(1, 300));
  core.stop();
  CHECK(sink->wait_closed() == end_cause::shutdown);
  CHECK(sink->on_strand == 0);
  CHECK(sink->off_strand == 301);
  CHECK(sink->scheduled > 0);
}

TEST_CASE("a turn an io_context discards unrun is dropped, and the "
          "connection goes on on CAF's scheduler") {
  threaded_core core;
  auto ioc = std::make_unique<asio::io_context>(1); // never run
  auto sink
      = std::make_shared<strand_sink>(asio::make_strand(*ioc), jobs::on_strand);
  core.open(sink);
  core.publish(1, 1);
  // The actor's first turn waits in the io_context, unrun: it has not even
  // subscribed, so nothing can have arrived and nothing else was scheduled.
  CHECK(sink->frames() == 0);
  CHECK(sink->scheduled == 1);
  sink->stopped = true;
  ioc.reset(); // destroys the posted turn: the job is dropped
  REQUIRE(sink->wait_frames(1) == ids(1, 1));
  core.publish(2, 50);
  CHECK(sink->wait_frames(50) == ids(1, 50));
  core.stop();
  CHECK(sink->wait_closed() == end_cause::shutdown);
  CHECK(sink->on_strand == 0);
}

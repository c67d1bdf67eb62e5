#include "app/wiring.hpp"

#include "actors/broadcaster.hpp"
#include "actors/buffer.hpp"
#include "actors/bus.hpp"
#include "actors/fetcher.hpp"
#include "actors/reader.hpp"
#include "actors/scheduler.hpp"
#include "actors/service_port.hpp"
#include "actors/stream_port.hpp"
#include "actors/supervision.hpp"
#include "app/defaults.hpp"
#include "app/state.hpp"
#include "cluster/redis_log.hpp"
#include "core/log.hpp"
#include "core/redis_url.hpp"
#include "core/url.hpp"
#include "core/watchdog.hpp"
#include "http/listener.hpp"
#include "upstream/http_client.hpp"

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace btcstream {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

/// Raises the soft open-files limit to the hard one; returns the result.
uint64_t raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 1024;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? 1'000'000 : rl.rlim_cur;
}

/// Where the web root may be: `--web-root`, else next to the binary, where
/// it is installed, the source tree's (running from a build directory).
std::vector<fs::path> web_root_candidates(const std::string& configured) {
  std::vector<fs::path> candidates;
  if (!configured.empty()) {
    candidates.emplace_back(configured);
  } else {
    std::error_code ec;
    auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec)
      candidates.push_back(exe.parent_path().parent_path() / "share"
                           / "btcstream" / "web");
    candidates.emplace_back(BTCSTREAM_INSTALLED_WEB_ROOT);
    candidates.emplace_back(BTCSTREAM_SOURCE_WEB_ROOT);
  }
  return candidates;
}

/// The first candidate that is a directory, canonical.
std::optional<fs::path> find_web_root(const std::vector<fs::path>& candidates) {
  for (auto& c : candidates) {
    std::error_code ec;
    auto p = fs::canonical(c, ec);
    if (!ec && fs::is_directory(p, ec))
      return p;
  }
  return std::nullopt;
}

/// The two Redis connections of a cluster node: a blocking read holds its
/// connection, so the lease and appends have their own.
struct cluster_links {
  std::shared_ptr<cluster_log> leader;
  std::shared_ptr<cluster_log> reader;
};

/// Asks the bus to give the lease up (cluster mode, clean shutdown); waits
/// for Redis at most `timeout`, after which the lease simply expires.
void release_lease(caf::actor_system& sys, const bus_actor& bus,
                   std::chrono::milliseconds timeout) {
  caf::scoped_actor self{sys};
  self->request(bus, timeout, atom::release_v)
      .receive([](bool) {},
               [](caf::error& err) {
                 log(log_level::warn, "lease not released: " + to_string(err));
               });
}

cluster_links connect_cluster(asio::io_context& ioc, const config& cfg) {
  auto ep = *parse_redis_url(cfg.redis_url);
  if (!cfg.redis_password.empty())
    ep.password = cfg.redis_password;
  // Lease requests must fail well inside the lease's renewal period.
  auto quick = std::min<std::chrono::milliseconds>(std::chrono::seconds{2},
                                                   cfg.lease_ttl / 4);
  auto leader_conn = std::make_shared<redis_connection>(ioc, ep, quick);
  auto reader_conn
      = std::make_shared<redis_connection>(ioc, ep, std::chrono::seconds{2});
  return {std::make_shared<redis_log>(leader_conn, cfg.redis_prefix, quick),
          std::make_shared<redis_log>(reader_conn, cfg.redis_prefix)};
}

/// Binds `lst` to HOST:PORT; logs a failure naming the flag.
bool open_listener(listener& lst, const char* flag, const std::string& host,
                   const std::string& port, bool reuse_port) {
  try {
    lst.open({asio::ip::make_address(host),
              static_cast<unsigned short>(std::stoul(port))},
             reuse_port);
    return true;
  } catch (const std::exception& e) {
    log(log_level::error,
        std::string{flag} + " " + host + ":" + port + ": " + e.what());
    return false;
  }
}

/// Resolves once: the first outcome (signal or core failure) wins.
class exit_latch {
public:
  void set(int code) {
    if (!done_.exchange(true))
      promise_.set_value(code);
  }
  int wait() { return promise_.get_future().get(); }

private:
  std::atomic<bool> done_{false};
  std::promise<int> promise_;
};

} // namespace

int run_service(const config& given) {
  config cfg = given;
  set_log_level(cfg.level);
  set_log_format(cfg.format);
  auto fd_limit = raise_fd_limit();
  if (cfg.max_clients == 0)
    cfg.max_clients = fd_limit > defaults::reserved_fds * 2
                          ? fd_limit - defaults::reserved_fds
                          : fd_limit / 2;
  for (auto& warning : cfg.warnings)
    log(log_level::warn, warning);
  auto candidates = web_root_candidates(cfg.web_root);
  auto web_root = find_web_root(candidates);
  if (!web_root) {
    std::string tried;
    for (auto& c : candidates)
      tried += (tried.empty() ? "'" : ", '") + c.string() + "'";
    log(log_level::error,
        cfg.web_root.empty()
            ? "--web-root: none given and no web root found (tried " + tried
                  + "): give --web-root"
            : "--web-root: no such directory: '" + cfg.web_root + "'");
    return 2;
  }
  cfg.web_root = web_root->string();
  auto upstream = parse_url(cfg.upstream_url);
  std::shared_ptr<asio::ssl::context> tls;
  try {
    tls = make_tls_context(cfg.upstream_ca);
  } catch (const std::exception& e) {
    log(log_level::error,
        "--upstream-ca: cannot load '" + cfg.upstream_ca + "': " + e.what());
    return 2;
  }
  log(log_level::info,
      "btcstream " BTCSTREAM_VERSION " starts: " + describe(cfg));

  // The io_context outlives the actor system (platform-facts.md).
  asio::io_context ioc{static_cast<int>(cfg.io_threads)};
  auto work = asio::make_work_guard(ioc);
  exit_latch exit;
  std::atomic<bool> stopping{false};
  int code = 0;
  {
    caf::actor_system_config sys_cfg;
    // Work sharing: one message to 50,000 actors in ~50 ms instead of
    // seconds with 0.17's work stealing (platform-facts.md,
    // docs/performance.md), by our scheduler rather than CAF's own
    // (actors/scheduler.hpp says why).
    sys_cfg.set("scheduler.policy", cfg.work_stealing ? caf::atom("stealing")
                                                      : caf::atom("sharing"));
    if (!cfg.work_stealing)
      use_sharing_scheduler(sys_cfg);
    sys_cfg.set("scheduler.max-threads",
                static_cast<size_t>(cfg.actor_threads));
    sys_cfg.set("logger.file-verbosity", caf::atom("quiet"));
    sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
    caf::actor_system sys{sys_cfg};

    auto clock = std::make_shared<system_wall_clock>();
    auto timeout = std::min<std::chrono::milliseconds>(
        cfg.interval * 4 / 5, std::chrono::milliseconds{10000});
    auto client = std::make_shared<http_client>(ioc, *upstream, tls,
                                                cfg.api_key, timeout);
    auto stats = std::make_shared<metrics>();
    bool cluster = !cfg.redis_url.empty();
    stats->cluster_mode = cluster;
    stats->sse_max_clients = cfg.max_clients;
    auto b = sys.spawn(broadcaster, caf::timespan{cfg.heartbeat}, stats);
    // A lagging node waits up to one interval for a resume id it has not
    // read yet (cluster mode).
    auto buf = sys.spawn(
        buffer, static_cast<size_t>(cfg.history_max), cfg.history_ttl, b, clock,
        stats, cluster ? caf::timespan{cfg.interval} : caf::timespan::zero());
    auto rng = std::make_shared<seeded_random>(std::random_device{}());
    bus_actor the_bus;
    reader_actor the_reader;
    update_sink_actor sink = buf;
    if (cluster) {
      auto links = connect_cluster(ioc, cfg);
      bus_options bo;
      bo.node = cfg.node_id;
      bo.lease_ttl = cfg.lease_ttl;
      bo.interval = cfg.interval;
      bo.max_len = cfg.history_max;
      bo.ttl = cfg.history_ttl;
      the_bus = sys.spawn(bus, links.leader, clock, stats, bo);
      the_reader
          = sys.spawn(reader, links.reader, buf, the_bus, clock,
                      std::make_shared<seeded_random>(std::random_device{}()),
                      stats, std::chrono::milliseconds{defaults::redis_block});
      sink = the_bus;
    }
    // One node: what the last run saved, before the first poll.
    auto restored = load_state(cfg, upstream->instrument(), clock->now_ms());
    for (auto& u : restored)
      caf::anon_send(buf, atom::restore_v, u);
    auto f
        = sys.spawn(fetcher, client, sink, clock, rng, upstream->instrument(),
                    caf::timespan{cfg.interval}, stats, !cluster,
                    restored.empty() ? update{} : restored.back());
    if (cluster)
      caf::anon_send(the_bus, atom::poller_v, f);
    auto shutting_down = [&stopping] {
      return stopping.load();
    };
    auto fail = [&exit](const std::string& who, const std::string& reason) {
      log(log_level::error, who + " died unexpectedly: " + reason);
      exit.set(1);
    };
    watch_core_actor(caf::actor_cast<caf::actor>(b), "broadcaster",
                     shutting_down, fail);
    watch_core_actor(caf::actor_cast<caf::actor>(buf), "buffer", shutting_down,
                     fail);
    watch_core_actor(caf::actor_cast<caf::actor>(f), "fetcher", shutting_down,
                     fail);
    if (cluster) {
      watch_core_actor(caf::actor_cast<caf::actor>(the_bus), "bus",
                       shutting_down, fail);
      watch_core_actor(caf::actor_cast<caf::actor>(the_reader), "reader",
                       shutting_down, fail);
    }

    auto ctx = std::make_shared<server_context>();
    ctx->stats = stats;
    ctx->opts.web_root = *web_root;
    ctx->opts.cors_origin = cfg.cors_origin;
    ctx->opts.retry = cfg.retry;
    ctx->opts.client_queue = cfg.client_queue;
    ctx->opts.stall_timeout = cfg.stall_timeout;
    ctx->opts.max_clients = cfg.max_clients;
    ctx->opts.max_http_connections = cfg.max_http_connections;
    ctx->opts.interval = cfg.interval;
    ctx->opts.history_ttl = cfg.history_ttl;
    ctx->opts.history_max = cfg.history_max;
    ctx->opts.heartbeat = cfg.heartbeat;
    ctx->opts.node_id = cfg.node_id;
    ctx->services
        = make_service_port(sys, f, buf, b, the_bus, defaults::health_timeout);
    ctx->streams = make_stream_port(sys, b, buf, cfg.history_max + 16, stats,
                                    caf::timespan{cfg.max_stream_age});
    auto lst = std::make_shared<listener>(ioc, ctx);
    auto admin = std::make_shared<listener>(ioc, ctx, true);
    bool listening = open_listener(*lst, "--listen", cfg.listen_host,
                                   cfg.listen_port, cfg.reuse_port);
    bool admin_listening = false;
    if (listening && !cfg.admin_host.empty())
      admin_listening = open_listener(*admin, "--admin-listen", cfg.admin_host,
                                      cfg.admin_port, false);
    // Both ports or neither: "listening on" is what supervisors and tests
    // wait for, so it must not appear when the process is about to exit 1.
    bool serving = listening && (cfg.admin_host.empty() || admin_listening);
    if (!serving)
      exit.set(1);
    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](boost::system::error_code ec, int sig) {
      if (!ec) {
        log(log_level::info, std::string{"btcstream stops on "}
                                 + (sig == SIGINT ? "SIGINT" : "SIGTERM"));
        exit.set(0);
      }
    });
    std::vector<std::thread> io;
    for (unsigned i = 0; i < cfg.io_threads; ++i)
      io.emplace_back([&ioc] {
        ioc.run();
      });
    if (serving) {
      auto ep = lst->local_endpoint();
      log(log_level::info, "listening on " + ep.address().to_string() + ":"
                               + std::to_string(ep.port()));
      lst->run();
    }
    if (serving && admin_listening) {
      auto ep = admin->local_endpoint();
      log(log_level::info, "admin port (metrics, health) on "
                               + ep.address().to_string() + ":"
                               + std::to_string(ep.port()));
      admin->run();
    }

    code = exit.wait();
    // One deadline for everything below (docs/api.md, "Shutdown"): the
    // grace counts from the signal, the last wait ends by then.
    auto signalled = std::chrono::steady_clock::now();
    auto exit_by = signalled + defaults::exit_within;
    // Each wait below is bounded by what is left until a point before the
    // deadline, and by 2 s; the watchdog ends a shutdown that still overruns
    // (an actor that never ends).
    auto wait_for = [&](std::chrono::milliseconds reserve) {
      using std::chrono::milliseconds;
      auto left = std::chrono::duration_cast<milliseconds>(
          exit_by - reserve - std::chrono::steady_clock::now());
      return std::clamp(left, milliseconds{50}, milliseconds{2000});
    };
    watchdog last_resort{exit_by, [] {
                           log(log_level::error,
                               "shutdown did not finish in time: "
                               "exiting now with code 1");
                           std::_Exit(1);
                         }};

    // Drain: readiness turns 503 and no connection is accepted any more,
    // while the open ones are served for the grace period.
    ctx->draining = true;
    lst->stop();
    // A leader hands the lease over now rather than let it expire: another
    // node polls within one interval, not --lease-ttl, and this node's
    // clients get its updates through the log during the grace period.
    if (the_bus)
      release_lease(sys, the_bus, wait_for(std::chrono::milliseconds{1500}));
    if (code == 0 && cfg.shutdown_grace.count() > 0)
      std::this_thread::sleep_until(signalled + cfg.shutdown_grace);
    admin->stop();

    // Shutdown: end the core actors (connections follow on the broadcaster's
    // `ended` and close their sinks), wait for every actor while the Asio
    // threads still run, then let sessions flush and close.
    stopping = true;
    signals.cancel();
    client->stop();
    save_state(sys, f, buf, cfg, upstream->instrument(),
               wait_for(std::chrono::milliseconds{1000}));
    for (auto& h :
         {caf::actor_cast<caf::actor>(f), caf::actor_cast<caf::actor>(the_bus),
          caf::actor_cast<caf::actor>(the_reader),
          caf::actor_cast<caf::actor>(buf), caf::actor_cast<caf::actor>(b)})
      if (h)
        caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    sys.await_all_actors_done();
    // Streams whose final chunk is still queued (a client that stopped
    // reading) may hold this up to 2 s, but not past the deadline less the
    // time the teardown below takes (~0.2 s at 10,000 sessions).
    auto deadline
        = std::min(std::chrono::steady_clock::now() + std::chrono::seconds{2},
                   exit_by - std::chrono::milliseconds{500});
    while (ctx->sse_clients.load() > 0
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    work.reset();
    ioc.stop();
    for (auto& t : io)
      t.join();
    // Only now, with no Asio thread left to open a stream: drop the port's
    // actor handles before the actor system goes.
    ctx->streams.reset();
    ctx->services.reset();
    last_resort.disarm();
  }
  log(log_level::info, "btcstream exits with code " + std::to_string(code));
  return code;
}

} // namespace btcstream

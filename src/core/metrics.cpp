#include "core/metrics.hpp"

#include "core/sse.hpp"

#include <chrono>
#include <cmath>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>
#include <utility>

namespace btcstream {

namespace {

constexpr auto relaxed = std::memory_order_relaxed;

std::string number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  return format_price(v); // shortest text that reads back exactly
}

void header(std::string& out, const char* name, const char* type,
            const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, const std::string& name, double v,
            const std::string& labels = {}) {
  out += name;
  if (!labels.empty())
    out += '{' + labels + '}';
  out += ' ';
  out += number(v);
  out += '\n';
}

template<class Atomic>
double get(const Atomic& a) {
  return static_cast<double>(a.load(relaxed));
}

/// This thread's stripe: threads take the stripes in turn as they first
/// observe, so the first few threads never share one.
size_t stripe_of_this_thread(size_t stripes) {
  static std::atomic<size_t> next{0};
  thread_local size_t mine = next.fetch_add(1, relaxed);
  return mine % stripes;
}

} // namespace

void histogram::observe(double seconds) {
  if (!(seconds >= 0))
    seconds = 0;
  size_t i = 0;
  while (i < bounds.size() && seconds > bounds[i])
    ++i;
  auto& st = stripes_[stripe_of_this_thread(stripes)];
  st.buckets[i].fetch_add(1, relaxed);
  st.count.fetch_add(1, relaxed);
  st.sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), relaxed);
}

uint64_t histogram::count() const {
  uint64_t n = 0;
  for (auto& st : stripes_)
    n += st.count.load(relaxed);
  return n;
}

void histogram::render(std::string& out, const std::string& name) const {
  // Read the count first: buckets observed later may exceed it by a few,
  // which Prometheus tolerates; the +Inf bucket is written as the count.
  auto total = count();
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    for (auto& st : stripes_)
      cumulative += st.buckets[i].load(relaxed);
    sample(out, name + "_bucket",
           static_cast<double>(std::min(cumulative, total)),
           "le=\"" + number(bounds[i]) + "\"");
  }
  sample(out, name + "_bucket", static_cast<double>(total), "le=\"+Inf\"");
  uint64_t sum_ns = 0;
  for (auto& st : stripes_)
    sum_ns += st.sum_ns.load(relaxed);
  sample(out, name + "_sum", static_cast<double>(sum_ns) / 1e9);
  sample(out, name + "_count", static_cast<double>(total));
}

int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

/// A thread's count of receivers handed on, not yet given to `probe`.
struct handed_batch {
  bool on = false;
  std::shared_ptr<fanout_probe> probe; // kept until the next probe
  size_t count = 0;
};

thread_local handed_batch this_thread_handed;

} // namespace

void fanout_probe::count_down(size_t n) {
  if (remaining_.fetch_sub(n, std::memory_order_acq_rel) == n && metrics_)
    metrics_->event_fanout.observe(
        static_cast<double>(steady_now_ns() - stored_ns_) / 1e9);
}

void fanout_probe::handed(const std::shared_ptr<fanout_probe>& probe) {
  auto& b = this_thread_handed;
  if (!b.on) {
    probe->count_down(1);
    return;
  }
  if (b.probe != probe) {
    publish_handed_counts();
    b.probe = probe;
  }
  ++b.count;
}

void batch_handed_counts() {
  this_thread_handed.on = true;
}

void publish_handed_counts() {
  auto& b = this_thread_handed;
  if (b.count > 0)
    b.probe->count_down(std::exchange(b.count, 0));
}

const char* to_string(disconnect_reason r) {
  switch (r) {
  case disconnect_reason::client_closed:
    return "client_closed";
  case disconnect_reason::slow_consumer:
    return "slow_consumer";
  case disconnect_reason::shutdown:
    return "shutdown";
  case disconnect_reason::max_age:
    return "max_age";
  case disconnect_reason::error:
    return "error";
  }
  return "error";
}

const char* to_string(reject_reason r) {
  return r == reject_reason::max_clients ? "max_clients" : "bad_request";
}

const char* to_string(route_label r) {
  switch (r) {
  case route_label::stream:
    return "stream";
  case route_label::price:
    return "price";
  case route_label::prices:
    return "prices";
  case route_label::info:
    return "info";
  case route_label::healthz:
    return "healthz";
  case route_label::readyz:
    return "readyz";
  case route_label::metrics:
    return "metrics";
  case route_label::static_file:
    return "static";
  case route_label::unknown:
    return "unknown";
  }
  return "unknown";
}

void metrics::count_request(route_label r, int code) {
  size_t i = 0;
  while (i + 1 < codes.size() && codes[i] != code)
    ++i;
  http_requests[static_cast<size_t>(r)][i].fetch_add(1, relaxed);
}

process_stats read_process_stats() {
  process_stats p;
  auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  if (std::ifstream statm{"/proc/self/statm"}) {
    double size = 0, resident = 0;
    if (statm >> size >> resident)
      p.resident_memory_bytes = resident * page;
  }
  if (std::ifstream stat{"/proc/self/stat"}) {
    std::string line;
    std::getline(stat, line);
    // Fields after the command name (which may hold spaces and ')').
    std::istringstream rest{line.substr(line.rfind(')') + 2)};
    std::string field;
    double utime = 0, stime = 0, start = 0;
    for (int i = 3; rest >> field; ++i) {
      if (i == 14)
        utime = std::stod(field);
      else if (i == 15)
        stime = std::stod(field);
      else if (i == 22) {
        start = std::stod(field);
        break;
      }
    }
    p.cpu_seconds = (utime + stime) / ticks;
    double boot = 0;
    if (std::ifstream s{"/proc/stat"}) {
      std::string key;
      while (s >> key)
        if (key == "btime") {
          s >> boot;
          break;
        }
    }
    p.start_time_seconds = boot + start / ticks;
  }
  if (auto* dir = opendir("/proc/self/fd")) {
    double n = 0;
    while (auto* e = readdir(dir))
      if (e->d_name[0] != '.')
        ++n;
    closedir(dir);
    p.open_fds = n - 1; // the directory stream itself
  }
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    p.max_fds = static_cast<double>(rl.rlim_cur);
  return p;
}

const char* to_string(redis_op o) {
  switch (o) {
  case redis_op::connect:
    return "connect";
  case redis_op::lease:
    return "lease";
  case redis_op::append:
    return "append";
  case redis_op::read:
    return "read";
  case redis_op::decode:
    return "decode";
  }
  return "?";
}

const char* to_string(append_result r) {
  switch (r) {
  case append_result::ok:
    return "ok";
  case append_result::fenced:
    return "fenced";
  case append_result::error:
    return "error";
  }
  return "?";
}

namespace {

void render_cluster(std::string& out, const cluster_metrics& c) {
  header(out, "btcstream_cluster_leader", "gauge",
         "1 while this node holds the lease and polls the upstream.");
  sample(out, "btcstream_cluster_leader", get(c.leader));
  header(out, "btcstream_cluster_lease_acquisitions_total", "counter",
         "Times this node acquired the lease.");
  sample(out, "btcstream_cluster_lease_acquisitions_total",
         get(c.lease_acquisitions));
  header(out, "btcstream_cluster_lease_losses_total", "counter",
         "Times this node lost the lease or gave it up unrenewed.");
  sample(out, "btcstream_cluster_lease_losses_total", get(c.lease_losses));
  header(out, "btcstream_cluster_appends_total", "counter",
         "Appends to the log, by result (fenced: refused, lease lost).");
  for (size_t i = 0; i < append_results; ++i)
    sample(out, "btcstream_cluster_appends_total", get(c.appends[i]),
           std::string{"result=\""} + to_string(static_cast<append_result>(i))
               + "\"");
  header(out, "btcstream_redis_up", "gauge",
         "1 while the log reader's Redis connection answers.");
  sample(out, "btcstream_redis_up", get(c.redis_up));
  header(out, "btcstream_redis_errors_total", "counter",
         "Failed Redis operations, by operation.");
  for (size_t i = 0; i < redis_ops; ++i)
    sample(out, "btcstream_redis_errors_total", get(c.redis_errors[i]),
           std::string{"op=\""} + to_string(static_cast<redis_op>(i)) + "\"");
  header(out, "btcstream_cluster_ingest_lag_seconds", "gauge",
         "From the newest entry's append in Redis to its local store.");
  sample(out, "btcstream_cluster_ingest_lag_seconds",
         c.ingest_lag_seconds.load(relaxed));
  header(out, "btcstream_cluster_ingested_total", "counter",
         "Log entries read and stored.");
  sample(out, "btcstream_cluster_ingested_total", get(c.ingested));
  header(out, "btcstream_cluster_backfilled_total", "counter",
         "Log entries read while catching up (start, reconnect).");
  sample(out, "btcstream_cluster_backfilled_total", get(c.backfilled));
  header(out, "btcstream_cluster_holes_total", "counter",
         "Holes found in the log (entries lost or trimmed unread).");
  sample(out, "btcstream_cluster_holes_total", get(c.holes));
}

} // namespace

std::string render_metrics(const metrics& m, uint64_t sse_clients,
                           int64_t now_ms, const process_stats& p,
                           int64_t actors) {
  std::string out;
  out.reserve(8192);
  header(out, "btcstream_sse_clients", "gauge", "SSE clients connected now.");
  sample(out, "btcstream_sse_clients", static_cast<double>(sse_clients));
  header(out, "btcstream_sse_max_clients", "gauge",
         "The --max-clients bound in force.");
  sample(out, "btcstream_sse_max_clients", get(m.sse_max_clients));
  header(out, "btcstream_sse_connections_total", "counter",
         "SSE streams opened.");
  sample(out, "btcstream_sse_connections_total", get(m.sse_connections));
  header(out, "btcstream_sse_disconnects_total", "counter",
         "SSE streams ended, by reason.");
  for (size_t i = 0; i < disconnect_reasons; ++i)
    sample(out, "btcstream_sse_disconnects_total", get(m.sse_disconnects[i]),
           std::string{"reason=\""}
               + to_string(static_cast<disconnect_reason>(i)) + "\"");
  header(out, "btcstream_sse_rejected_total", "counter",
         "SSE requests refused, by reason.");
  for (size_t i = 0; i < reject_reasons; ++i)
    sample(out, "btcstream_sse_rejected_total", get(m.sse_rejected[i]),
           std::string{"reason=\""} + to_string(static_cast<reject_reason>(i))
               + "\"");
  header(out, "btcstream_events_published_total", "counter",
         "Updates stored and published to subscribers.");
  sample(out, "btcstream_events_published_total", get(m.events_published));
  header(out, "btcstream_event_fanout_seconds", "histogram",
         "From storing an update to its frame being handed to every "
         "subscribed session.");
  m.event_fanout.render(out, "btcstream_event_fanout_seconds");
  header(out, "btcstream_event_delivery_seconds", "histogram",
         "From storing an update to its write completing, per session.");
  m.event_delivery.render(out, "btcstream_event_delivery_seconds");
  header(out, "btcstream_replayed_events_total", "counter",
         "Updates replayed to resuming clients.");
  sample(out, "btcstream_replayed_events_total", get(m.replayed_events));
  header(out, "btcstream_gap_events_total", "counter",
         "Gap events sent to clients: before replays, and live after holes.");
  sample(out, "btcstream_gap_events_total", get(m.gap_events));
  header(out, "btcstream_upstream_requests_total", "counter",
         "Upstream requests, by outcome.");
  for (size_t i = 0; i < m.upstream_requests.size(); ++i)
    sample(out, "btcstream_upstream_requests_total",
           get(m.upstream_requests[i]),
           std::string{"outcome=\""} + to_string(static_cast<fetch_outcome>(i))
               + "\"");
  header(out, "btcstream_upstream_request_seconds", "histogram",
         "Upstream request duration (answers and failures).");
  m.upstream_request.render(out, "btcstream_upstream_request_seconds");
  header(out, "btcstream_upstream_skipped_ticks_total", "counter",
         "Poll ticks skipped: a request in flight or a pause.");
  sample(out, "btcstream_upstream_skipped_ticks_total",
         get(m.upstream_skipped_ticks));
  if (auto ts = m.last_price_ts_ms.load(relaxed); ts != 0) {
    header(out, "btcstream_last_price_age_seconds", "gauge",
           "Age of the latest price.");
    sample(out, "btcstream_last_price_age_seconds",
           static_cast<double>(std::max<int64_t>(0, now_ms - ts)) / 1000.0);
    header(out, "btcstream_last_price_usd", "gauge", "The latest price.");
    sample(out, "btcstream_last_price_usd", m.last_price_usd.load(relaxed));
  }
  header(out, "btcstream_buffer_entries", "gauge", "Updates in the buffer.");
  sample(out, "btcstream_buffer_entries", get(m.buffer_entries));
  if (auto ts = m.buffer_oldest_ts_ms.load(relaxed); ts != 0) {
    header(out, "btcstream_buffer_oldest_age_seconds", "gauge",
           "Age of the oldest buffered update.");
    sample(out, "btcstream_buffer_oldest_age_seconds",
           static_cast<double>(std::max<int64_t>(0, now_ms - ts)) / 1000.0);
  }
  header(out, "btcstream_http_requests_total", "counter",
         "HTTP requests answered, by route and status code.");
  for (size_t r = 0; r < route_labels; ++r)
    for (size_t c = 0; c < metrics::codes.size(); ++c) {
      auto n = m.http_requests[r][c].load(relaxed);
      if (n == 0)
        continue; // only combinations that occurred
      auto code = metrics::codes[c] == 0 ? std::string{"other"}
                                         : std::to_string(metrics::codes[c]);
      sample(out, "btcstream_http_requests_total", static_cast<double>(n),
             std::string{"route=\""} + to_string(static_cast<route_label>(r))
                 + "\",code=\"" + code + "\"");
    }
  header(out, "btcstream_live_objects", "gauge",
         "Live SSE sessions, HTTP sessions, connection actors and actors.");
  sample(out, "btcstream_live_objects", get(m.sse_sessions),
         "kind=\"sse_session\"");
  sample(out, "btcstream_live_objects", get(m.http_sessions),
         "kind=\"http_session\"");
  sample(out, "btcstream_live_objects", get(m.connection_actors),
         "kind=\"connection_actor\"");
  sample(out, "btcstream_live_objects", static_cast<double>(actors),
         "kind=\"actor\"");
  if (m.cluster_mode)
    render_cluster(out, m.cluster);
  header(out, "btcstream_build_info", "gauge", "Version of this build.");
  sample(out, "btcstream_build_info", 1, "version=\"" BTCSTREAM_VERSION "\"");
  header(out, "process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes.");
  sample(out, "process_resident_memory_bytes", p.resident_memory_bytes);
  header(out, "process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.");
  sample(out, "process_cpu_seconds_total", p.cpu_seconds);
  header(out, "process_open_fds", "gauge", "Number of open file descriptors.");
  sample(out, "process_open_fds", p.open_fds);
  header(out, "process_max_fds", "gauge",
         "Maximum number of open file descriptors.");
  sample(out, "process_max_fds", p.max_fds);
  header(out, "process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.");
  sample(out, "process_start_time_seconds", p.start_time_seconds);
  return out;
}

} // namespace btcstream

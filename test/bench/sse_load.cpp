// sse_load: a single-threaded load client for btcstream's `GET /stream`.
// Opens N SSE connections at a fixed rate, waits until every connected client
// has seen E new events (or the duration ends) and reports errors, latency,
// fan-out spread, ordering and CPU cost. See README.md in this directory.
#include <boost/asio.hpp>

#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

/// Command-line options by name (`--name value`), all with a default.
using options = std::map<std::string, std::string>;

double number(const options& o, const char* name) {
  return std::stod(o.at(name));
}

/// Why a client never reached a 200 response head.
enum error_kind { refused, timeout, reset, bad_status, other, n_kinds };
const char* const kind_names[]
    = {"refused", "timeout", "reset", "status", "other"};

enum class phase { idle, connecting, head, body, done };

struct client {
  explicit client(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  phase state = phase::idle;
  bool got_200 = false;
  steady::time_point started;
  char buf[2048];
  std::string head; // response head until the empty line
  bool chunked = false;
  int chunk_state = 0; // 0: size line, 1: chunk data, 2: CRLF after data
  size_t chunk_left = 0;
  std::string size_line; // partial chunk-size line
  std::string line;      // partial SSE line
  uint64_t id = 0;       // fields of the SSE event being parsed
  bool has_id = false;
  std::string data;
  uint64_t last_id = 0;
  int events = 0, new_events = 0, dups = 0, out_of_order = 0;
};

/// A reported number: a table row `group` and a JSON key `group_name`.
struct metric {
  template<class T>
  metric(const char* g, const char* n, T v)
      : group(g), name(n), value(static_cast<double>(v)) {}
  const char *group, *name;
  double value;
};

struct id_stat {
  steady::time_point first, last;
  size_t receivers = 0;
};

/// VmRSS (kB) and utime + stime (s) of a process; rss_kb 0 if unreadable.
struct proc_sample {
  long rss_kb = 0;
  double cpu_s = NAN;
};

proc_sample sample_proc(long pid) {
  proc_sample s;
  if (pid <= 0)
    return s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string l; std::getline(status, l);)
    if (l.compare(0, 6, "VmRSS:") == 0)
      s.rss_kb = std::atol(l.c_str() + 6);
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string l;
  std::getline(stat, l);
  auto paren = l.rfind(')'); // after the command name, which may hold anything
  unsigned long ut, st;      // fields 14 and 15 of proc(5)
  if (paren != l.npos
      && std::sscanf(l.c_str() + paren + 1,
                     " %*c%*d%*d%*d%*d%*d%*u%*u%*u%*u%*u"
                     "%lu%lu",
                     &ut, &st)
             == 2)
    s.cpu_s = static_cast<double>(ut + st) / sysconf(_SC_CLK_TCK);
  return s;
}

double own_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) {
    return t.tv_sec + t.tv_usec / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

double secs(steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

/// The `"timestamp":"2026-11-26T18:45:17.123Z"` of a data line in unix ms.
bool parse_timestamp(const std::string& data, double& ms) {
  static const std::string key = "\"timestamp\":\"";
  auto pos = data.find(key);
  std::tm t{};
  int frac = 0, a = 0, b = 0;
  if (pos == data.npos
      || std::sscanf(data.c_str() + pos + key.size(),
                     "%4d-%2d-%2dT%2d:%2d:%2d.%n%d%n", &t.tm_year, &t.tm_mon,
                     &t.tm_mday, &t.tm_hour, &t.tm_min, &t.tm_sec, &a, &frac,
                     &b)
             < 7)
    return false;
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  ms = timegm(&t) * 1000.0 + frac * std::pow(10.0, 3 - (b - a));
  return true;
}

/// Percentile by nearest rank; NaN for an empty set.
double pct(std::vector<double> v, double p) {
  if (v.empty())
    return NAN;
  auto k = std::min(v.size() - 1, static_cast<size_t>(p / 100 * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

std::string num(double v, int prec = 3) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return std::isfinite(v) ? b : "null";
}

class load {
public:
  load(asio::io_context& io, const options& o)
      : opt_(o),
        io_(io),
        tick_(io),
        signals_(io, SIGINT, SIGTERM),
        endpoint_(asio::ip::make_address(opt_.at("host")),
                  static_cast<unsigned short>(number(opt_, "port"))) {
    for (size_t i = 0; i < clients_n_; ++i)
      clients_.push_back(std::make_unique<client>(io_));
  }

  void start() {
    srv_[0] = sample_proc(server_pid_);
    t_[0] = steady::now();
    cpu_[0] = own_cpu_s();
    signals_.async_wait([this](error_code, int) {
      finish();
    });
    on_tick();
  }

  void report();

private:
  /// Every 5 ms: start due connects, expire slow ones, end phases.
  void on_tick() {
    auto now = steady::now();
    double elapsed = secs(now - t_[0]);
    auto due = std::min(clients_n_, static_cast<size_t>(rate_ * elapsed) + 1);
    while (launched_ < due)
      do_connect(*clients_[launched_++]);
    if (!events_phase_ && now >= next_sweep_) {
      next_sweep_ = now + std::chrono::milliseconds(250);
      for (size_t i = 0; i < launched_; ++i) {
        auto& c = *clients_[i];
        if ((c.state == phase::connecting || c.state == phase::head)
            && secs(now - c.started) > connect_timeout_)
          fail(c, timeout, "no response head in time");
      }
    }
    if (!events_phase_ && launched_ == clients_n_ && pending_ == 0) {
      events_phase_ = true; // sample before any event of the new phase
      t_[1] = now;
      cpu_[1] = own_cpu_s();
      srv_[1] = sample_proc(server_pid_);
      open_at_connected_ = alive_;
      baseline_ = max_seen_; // ids up to here were not fanned out to all
    }
    if (elapsed >= duration_ || (events_phase_ && clients_done_ >= alive_))
      return finish();
    tick_.expires_after(std::chrono::milliseconds(5));
    tick_.async_wait([this](error_code ec) {
      if (!ec)
        on_tick();
    });
  }

  void do_connect(client& c) {
    error_code ec;
    c.state = phase::connecting;
    c.started = steady::now();
    ++pending_;
    auto source = 0x7f000001u + launched_ % sources_; // round robin from .1
    c.sock.open(tcp::v4(), ec);
    // Choose the source port at connect(): each address pair has ~28k.
    using no_port
        = asio::detail::socket_option::boolean<IPPROTO_IP,
                                               IP_BIND_ADDRESS_NO_PORT>;
    if (!ec)
      c.sock.set_option(no_port(true), ec);
    if (!ec)
      c.sock.bind({asio::ip::address_v4(source), 0}, ec);
    if (ec)
      return fail(c, other, ec.message());
    c.sock.async_connect(endpoint_, [this, &c](error_code ec) {
      if (c.state != phase::connecting)
        return;
      if (ec)
        return fail(c, kind_of(ec), ec.message());
      c.state = phase::head;
      asio::async_write(c.sock, asio::buffer(request_),
                        [this, &c](error_code ec, size_t) {
                          if (ec && c.state == phase::head)
                            fail(c, kind_of(ec), ec.message());
                        });
      do_read(c);
    });
  }

  static error_kind kind_of(error_code ec) {
    if (ec == asio::error::connection_refused)
      return refused;
    if (ec == asio::error::timed_out)
      return timeout;
    bool rst = ec == asio::error::connection_reset || ec == asio::error::eof
               || ec == asio::error::broken_pipe;
    return rst ? reset : other;
  }

  /// Ends a client that never reached a 200 response head.
  void fail(client& c, error_kind k, const std::string& what) {
    if (errors_[k]++ == 0)
      first_error_[k] = what;
    --pending_;
    close(c);
  }

  /// Ends a client after its 200 head: server closed, or bad framing.
  void drop(client& c) {
    ++dropped_;
    --alive_;
    clients_done_ -= c.new_events >= events_;
    close(c);
  }

  void close(client& c) {
    c.state = phase::done;
    error_code ignored;
    c.sock.close(ignored);
  }

  void do_read(client& c) {
    c.sock.async_read_some(
        asio::buffer(c.buf), [this, &c](error_code ec, size_t n) {
          if (c.state == phase::done)
            return;
          if (ec && c.state == phase::head)
            return fail(c, kind_of(ec), ec.message());
          if (ec)
            return drop(c);
          now_ = steady::now(); // one receive time per read
          now_sys_ms_ = std::chrono::duration<double, std::milli>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
          if (c.state == phase::head ? head(c, n) : body(c, c.buf, n))
            do_read(c);
        });
  }

  /// Collects the response head; false when the client was closed.
  bool head(client& c, size_t n) {
    c.head.append(c.buf, n);
    auto end = c.head.find("\r\n\r\n");
    if (end == c.head.npos && c.head.size() > 16384)
      fail(c, other, "response head too large");
    if (end == c.head.npos)
      return c.state == phase::head;
    int code = c.head.compare(0, 5, "HTTP/") == 0 && c.head.size() > 12
                   ? std::atoi(c.head.c_str() + 9)
                   : 0;
    if (code != 200)
      return fail(c, bad_status, "HTTP " + std::to_string(code)), false;
    std::string lower = c.head.substr(0, end);
    for (char& ch : lower)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    c.chunked = lower.find("\r\ntransfer-encoding: chunked") != lower.npos;
    std::string rest = c.head.substr(end + 4);
    std::string().swap(c.head);
    c.state = phase::body;
    c.got_200 = true;
    --pending_;
    ++alive_;
    return body(c, rest.data(), rest.size());
  }

  /// Removes the chunked framing, if any, and hands the payload to sse().
  bool body(client& c, const char* p, size_t n) {
    while (n > 0 && c.state == phase::body) {
      size_t take = n;
      if (!c.chunked) {
        sse(c, p, n);
      } else if (c.chunk_state == 0) { // "<hex>[;ext]\r\n"
        auto nl = static_cast<const char*>(std::memchr(p, '\n', n));
        take = nl ? static_cast<size_t>(nl - p) + 1 : n;
        c.size_line.append(p, take);
        if (c.size_line.size() > 64
            || !std::isxdigit(static_cast<unsigned char>(c.size_line[0]))) {
          ++protocol_errors_;
          drop(c);
        } else if (nl) {
          c.chunk_left = std::strtoul(c.size_line.c_str(), nullptr, 16);
          c.size_line.clear();
          c.chunk_state = 1;
          if (c.chunk_left == 0)
            drop(c); // the last chunk: the server ended the stream
        }
      } else { // chunk data, then its CRLF (skipped)
        take = std::min(n, c.chunk_left);
        if (c.chunk_state == 1)
          sse(c, p, take);
        if ((c.chunk_left -= take) == 0) {
          c.chunk_left = c.chunk_state == 1 ? 2 : 0;
          c.chunk_state = c.chunk_state == 1 ? 2 : 0;
        }
      }
      p += take;
      n -= take;
    }
    return c.state == phase::body;
  }

  /// Splits the event stream into lines.
  void sse(client& c, const char* p, size_t n) {
    while (n > 0) {
      auto nl = static_cast<const char*>(std::memchr(p, '\n', n));
      size_t take = nl ? static_cast<size_t>(nl - p) + 1 : n;
      c.line.append(p, nl ? take - 1 : take);
      p += take;
      n -= take;
      if (nl)
        sse_line(c);
    }
  }

  void sse_line(client& c) {
    std::string l;
    l.swap(c.line);
    if (!l.empty() && l.back() == '\r')
      l.pop_back();
    if (l.empty()) {                   // dispatch
      if (c.has_id && !c.data.empty()) // a gap event has no id
        on_event(c);
      c.has_id = false;
      c.data.clear();
      return;
    }
    auto colon = l.find(':');
    std::string field = l.substr(0, colon);
    size_t v = colon == l.npos ? l.size() : colon + 1;
    v += v < l.size() && l[v] == ' ';
    if (field == "id") {
      char* end = nullptr;
      c.id = std::strtoull(l.c_str() + v, &end, 10);
      c.has_id = v < l.size() && *end == '\0';
    } else if (field == "data") {
      c.data.append(l, v, l.npos);
    } // comments (empty field), `retry` and `event` are ignored
  }

  void on_event(client& c) {
    ++c.events;
    events_in_phase_ += events_phase_;
    max_seen_ = std::max(max_seen_, c.id);
    if (c.last_id != 0 && c.id <= c.last_id) {
      ++(c.id == c.last_id ? c.dups : c.out_of_order);
      return;
    }
    c.last_id = c.id;
    if (!events_phase_ || c.id <= baseline_)
      return;
    auto& s = ids_[c.id];
    if (s.receivers++ == 0)
      s.first = now_;
    s.last = now_;
    double ts = 0;
    if (parse_timestamp(c.data, ts))
      latencies_.push_back(now_sys_ms_ - ts);
    else
      ++bad_timestamps_;
    clients_done_ += ++c.new_events == events_;
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    t_[2] = steady::now();
    cpu_[2] = own_cpu_s();
    srv_[2] = sample_proc(server_pid_);
    if (!events_phase_)
      t_[1] = t_[2], cpu_[1] = cpu_[2];
    for (auto& c : clients_)
      close(*c);
    io_.stop();
  }

  const options opt_;
  asio::io_context& io_;
  const size_t clients_n_ = std::stoul(opt_.at("clients"));
  const double rate_ = number(opt_, "rate");
  const double duration_ = number(opt_, "duration");
  const double connect_timeout_ = number(opt_, "connect-timeout");
  const unsigned sources_ = std::stoul(opt_.at("sources"));
  const int events_ = std::stoi(opt_.at("events"));
  const long server_pid_ = std::stol(opt_.at("server-pid"));
  asio::steady_timer tick_;
  asio::signal_set signals_;
  tcp::endpoint endpoint_;
  const std::string request_ = "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::unique_ptr<client>> clients_;
  size_t launched_ = 0, pending_ = 0, alive_ = 0, clients_done_ = 0;
  size_t open_at_connected_ = 0, dropped_ = 0, protocol_errors_ = 0;
  size_t errors_[n_kinds] = {}, events_in_phase_ = 0, bad_timestamps_ = 0;
  std::string first_error_[n_kinds];
  bool events_phase_ = false, finished_ = false;
  uint64_t max_seen_ = 0, baseline_ = 0;
  std::unordered_map<uint64_t, id_stat> ids_;
  std::vector<double> latencies_;
  steady::time_point now_, next_sweep_;
  double now_sys_ms_ = 0;
  // Index 0: start, 1: all clients connected, 2: end.
  steady::time_point t_[3];
  double cpu_[3] = {};
  proc_sample srv_[3];
};

void load::report() {
  std::vector<double> per_client, spreads;
  size_t connected = 0, dups = 0, ooo = 0, bad_clients = 0;
  for (auto& c : clients_) {
    if (!c->got_200)
      continue;
    ++connected;
    per_client.push_back(c->events);
    dups += c->dups;
    ooo += c->out_of_order;
    bad_clients += c->dups + c->out_of_order > 0;
  }
  size_t min_recv = ids_.empty() ? 0 : SIZE_MAX;
  for (auto& [id, s] : ids_) {
    spreads.push_back(1000 * secs(s.last - s.first));
    min_recv = std::min(min_recv, s.receivers);
  }
  double wall = secs(t_[2] - t_[0]);
  double cpu_pct = 100 * (cpu_[2] - cpu_[0]) / wall;
  double ev_wall = secs(t_[2] - t_[1]); // too short a phase says nothing
  double ev_cpu_pct = ev_wall < 0.5 ? NAN : 100 * (cpu_[2] - cpu_[1]) / ev_wall;
  bool srv = srv_[0].rss_kb && srv_[1].rss_kb && srv_[2].rss_kb;
  double srv_cpu = srv ? srv_[2].cpu_s - srv_[1].cpu_s : NAN;
  double rss_delta = srv ? (srv_[1].rss_kb - srv_[0].rss_kb) * 1024.0 : NAN;
  std::printf("sse_load %s:%s  clients %zu  rate %s/s  sources %u  events %d\n",
              opt_.at("host").c_str(), opt_.at("port").c_str(), clients_n_,
              opt_.at("rate").c_str(), sources_, events_);
  for (int k = 0; k < n_kinds; ++k)
    if (errors_[k])
      std::printf("first %s error: %s\n", kind_names[k],
                  first_error_[k].c_str());

  // One table row per group; the JSON line names each number group_name.
  const double lat[] = {pct(latencies_, 50), pct(latencies_, 90),
                        pct(latencies_, 99), pct(latencies_, 100)};
  // clang-format off
  const metric m[] = {
    {"connect", "launched", launched_}, {"connect", "ok", connected},
    {"connect", "seconds", secs(t_[1] - t_[0])},
    {"connect", "open_at_end", alive_},
    {"errors", "refused", errors_[refused]},
    {"errors", "timeout", errors_[timeout]},
    {"errors", "reset", errors_[reset]},
    {"errors", "status", errors_[bad_status]},
    {"errors", "other", errors_[other]},
    {"errors", "dropped", dropped_}, {"errors", "protocol", protocol_errors_},
    {"events", "client_min", pct(per_client, 0)},
    {"events", "client_p50", pct(per_client, 50)},
    {"events", "client_max", pct(per_client, 100)},
    {"events", "new_ids", ids_.size()}, {"events", "receivers_min", min_recv},
    {"events", "in_phase", events_in_phase_},
    {"latency_ms", "p50", lat[0]}, {"latency_ms", "p90", lat[1]},
    {"latency_ms", "p99", lat[2]}, {"latency_ms", "max", lat[3]},
    {"latency_ms", "n", latencies_.size()},
    {"fanout_ms", "p50", pct(spreads, 50)},
    {"fanout_ms", "max", pct(spreads, 100)},
    {"order", "duplicates", dups}, {"order", "out_of_order", ooo},
    {"order", "clients", bad_clients},
    {"order", "bad_timestamps", bad_timestamps_},
    {"client", "cpu_pct", cpu_pct}, {"client", "event_cpu_pct", ev_cpu_pct},
    {"client", "wall_s", wall},
    {"client", "us_per_event", (cpu_[2] - cpu_[1]) * 1e6 / events_in_phase_},
    {"server", "rss_kb_start", srv ? srv_[0].rss_kb : NAN},
    {"server", "rss_kb_connected", srv ? srv_[1].rss_kb : NAN},
    {"server", "rss_kb_end", srv ? srv_[2].rss_kb : NAN},
    {"server", "bytes_per_client", std::round(rss_delta / open_at_connected_)},
    {"server", "cpu_s", srv_cpu},
    {"server", "us_per_event", srv_cpu * 1e6 / events_in_phase_},
  };
  // clang-format on
  auto text = [](double v) {
    return num(v, v == std::floor(v) ? 0 : 3);
  };
  for (auto& x : m) {
    if (!server_pid_ && std::strcmp(x.group, "server") == 0)
      continue; // the JSON line keeps its nulls
    if (&x == m || std::strcmp(x.group, (&x - 1)->group) != 0)
      std::printf("%s%-10s", &x == m ? "" : "\n", x.group);
    std::printf(" %s %s", x.name, text(x.value).c_str());
  }
  if (cpu_pct >= 90 || ev_cpu_pct >= 90)
    std::printf("\nWARNING: the load client is saturated (>= 90 %% CPU): its "
                "latency and fan-out numbers measure itself");
  for (auto& x : m)
    std::printf("%s\"%s_%s\":%s", &x == m ? "\n{" : ",", x.group, x.name,
                text(x.value).c_str());
  std::printf("}\n");
}

} // namespace

int main(int argc, char** argv) {
  options opt
      = {{"host", "127.0.0.1"}, {"port", "8080"},    {"clients", "100"},
         {"rate", "1000"},      {"sources", "1"},    {"duration", "60"},
         {"events", "10"},      {"server-pid", "0"}, {"connect-timeout", "10"}};
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (i + 1 == argc || a.compare(0, 2, "--") || !opt.count(a.substr(2))) {
      std::fprintf(stderr, "usage: sse_load [--host 127.0.0.1] [--port 8080] "
                           "[--clients N] [--rate R] [--sources K] [--duration "
                           "S] [--events E] [--server-pid P] "
                           "[--connect-timeout S]\n");
      return 2;
    }
    opt[a.substr(2)] = argv[i + 1];
  }
  try {
    if (number(opt, "sources") < 1 || number(opt, "sources") > 254
        || number(opt, "rate") <= 0 || number(opt, "events") < 1
        || number(opt, "clients") < 1)
      throw std::invalid_argument("need sources in 1..254, clients >= 1, "
                                  "rate > 0, events >= 1");
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < number(opt, "clients") + 16)
      std::fprintf(stderr,
                   "sse_load: open files limit %lu is too low for "
                   "%s clients: run several processes\n",
                   static_cast<unsigned long>(rl.rlim_cur),
                   opt["clients"].c_str());
    asio::io_context io(1);
    load l(io, opt);
    l.start();
    io.run();
    l.report();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sse_load: %s\n", e.what());
    return 2;
  }
  return 0;
}

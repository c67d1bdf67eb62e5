// sse_load: a single-threaded load client for SSE streams (btcstream's
// `GET /stream`, nginx+nchan). Opens N SSE connections at a fixed rate, waits
// until every connected client has seen E new events (or the duration ends)
// and reports errors, latency, fan-out spread, ordering and CPU cost; some
// clients can stall, reconnect like EventSource, or come and go (churn). See
// README.md in this directory.
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
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
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

/// Why a client never reached a 200 response head (or, for churn, its first
/// event).
enum error_kind { refused, timeout, reset, bad_status, other, n_kinds };
const char* const kind_names[]
    = {"refused", "timeout", "reset", "status", "other"};

/// waiting: a steady client between two streams (reconnect pending);
/// stalled: reads nothing after its 200 head; draining: the final check of a
/// stalled client.
enum class phase {
  idle,
  connecting,
  head,
  body,
  waiting,
  stalled,
  draining,
  done
};

/// steady clients are measured; stall clients stop reading; churn clients are
/// short-lived extra connections in reusable slots.
enum class role { steady, stall, churn };

struct client {
  explicit client(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  role kind = role::steady;
  phase state = phase::idle;
  unsigned gen = 0; // connection attempt; handlers of older ones do nothing
  size_t index = 0; // in the steady clients
  uint32_t source = 0;
  bool got_200 = false, resuming = false, gave_up = false;
  steady::time_point started;
  char buf[2048];
  std::string head; // response head until the empty line
  bool chunked = false;
  int chunk_state = 0; // 0: size line, 1: chunk data, 2: CRLF after data
  size_t chunk_left = 0;
  std::string size_line; // partial chunk-size line
  std::string line;      // partial SSE line
  uint64_t id = 0;       // fields of the SSE event being parsed: id as key
  bool has_id = false, id_field = false;
  std::string raw_id, data;
  std::string last_raw;     // the last id as sent, for Last-Event-ID
  long retry_ms = -1;       // the last `retry:`, -1 if none
  std::string request;      // of a reconnect (with Last-Event-ID)
  uint64_t last_id = 0;     // key of the last event, across reconnects
  uint64_t replay_upto = 0; // ids up to here on this stream are replays,
  double resumed_ms = 0;    // and so are events older than its head
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
  steady::time_point first, last; // of live (not replayed) receipts
  double first_latency_ms = NAN;  // of the first live receipt
  size_t receivers = 0, live = 0;
};

/// VmRSS (kB), utime + stime (s) and stime alone (the kernel's share),
/// summed over processes; a process that cannot be read (gone) counts as 0
/// and in `missing`. With the context switches of all their threads: the
/// voluntary ones are a thread going to sleep (each one a wake-up later),
/// the involuntary ones a thread preempted.
struct proc_sample {
  long rss_kb = 0;
  double cpu_s = 0;
  double sys_s = 0;
  double cs_voluntary = 0;
  double cs_involuntary = 0;
  int missing = 0;
};

/// Adds the context switches of every thread of `pid` to `s` (threads gone
/// by then are not counted: the servers keep theirs for their lifetime).
void add_context_switches(long pid, proc_sample& s) {
  std::error_code ec;
  auto dir = "/proc/" + std::to_string(pid) + "/task";
  for (auto& task : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream status(task.path() / "status");
    for (std::string l; std::getline(status, l);) {
      if (l.compare(0, 24, "voluntary_ctxt_switches:") == 0)
        s.cs_voluntary += std::atof(l.c_str() + 24);
      else if (l.compare(0, 27, "nonvoluntary_ctxt_switches:") == 0)
        s.cs_involuntary += std::atof(l.c_str() + 27);
    }
  }
}

/// `context_switches`: false for the once-a-second RSS samples, which need
/// only VmRSS (reading every thread's status there would be load-client
/// work for nothing).
proc_sample sample_procs(const std::vector<long>& pids,
                         bool context_switches = true) {
  proc_sample s;
  for (long pid : pids) {
    long rss = 0;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string l; std::getline(status, l);)
      if (l.compare(0, 6, "VmRSS:") == 0)
        rss = std::atol(l.c_str() + 6);
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string l;
    std::getline(stat, l);
    auto paren = l.rfind(')'); // after the command name, which may hold any
    unsigned long ut, st;      // fields 14 and 15 of proc(5)
    if (!rss || paren == l.npos
        || std::sscanf(l.c_str() + paren + 1,
                       " %*c%*d%*d%*d%*d%*d%*u%*u%*u%*u%*u"
                       "%lu%lu",
                       &ut, &st)
               != 2) {
      ++s.missing;
      continue;
    }
    s.rss_kb += rss;
    s.cpu_s += static_cast<double>(ut + st) / sysconf(_SC_CLK_TCK);
    s.sys_s += static_cast<double>(st) / sysconf(_SC_CLK_TCK);
    if (context_switches)
      add_context_switches(pid, s);
  }
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

/// Times this process went to sleep, each one a later wake-up: unpaced, by
/// a server's write, which pays for it. A client that keeps up with the
/// server sleeps often (a 1-thread server here), one that falls behind
/// rarely (a 2-thread one).
double own_sleeps() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_nvcsw);
}

double secs(steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

double unix_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// An event id as an ordering key: `1764191000123` is itself; nchan's
/// `S:T`, `S:[T]` or `S:T1,[T2],...` (several tags: the bracketed one, else
/// the first) is S * 1000000 + T.
bool parse_id(const std::string& s, uint64_t& key) {
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])))
    return false;
  char* end = nullptr;
  uint64_t sec = std::strtoull(s.c_str(), &end, 10);
  if (*end == '\0')
    return key = sec, true;
  if (*end != ':')
    return false;
  long tag = -1;
  for (const char* p = end + 1; true; ++p) {
    bool bracket = *p == '[';
    p += bracket;
    long t = std::strtol(p, &end, 10);
    if (end == p || (bracket && *end != ']'))
      return false;
    if (tag == -1 || bracket)
      tag = t;
    p = end + bracket;
    if (*p == '\0')
      break;
    if (*p != ',')
      return false;
  }
  if (tag < 0 || tag >= 1000000)
    return false;
  key = sec * 1000000 + static_cast<uint64_t>(tag);
  return true;
}

/// Days from 1970-01-01 to the proleptic Gregorian date y-m-d.
long days_since_epoch(long y, long m, long d) {
  y -= m <= 2; // count March-based years: the leap day comes last
  long era = (y >= 0 ? y : y - 399) / 400;
  long yoe = y - era * 400;
  long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/// The `"timestamp":"2026-11-26T18:45:17.123Z"` of a data line in unix ms
/// (blanks around the colon allowed; any number of fraction digits). Parsed
/// by hand: it runs once per delivered event, and sscanf + timegm cost the
/// load client more than its read did.
bool parse_timestamp(const std::string& data, double& ms) {
  static const std::string key = "\"timestamp\"";
  auto pos = data.find(key);
  if (pos != data.npos)
    pos = data.find_first_not_of(" :", pos + key.size());
  if (pos == data.npos || data[pos] != '"')
    return false;
  const char* p = data.c_str() + pos + 1;
  // Fixed width up to the seconds: 2026-11-26T18:45:17
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  for (size_t i = 0; i + 1 < sizeof shape; ++i)
    if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(p[i]))
                        : p[i] != shape[i])
      return false;
  auto num = [p](int at, int n) {
    long v = 0;
    for (int i = at; i < at + n; ++i)
      v = v * 10 + (p[i] - '0');
    return v;
  };
  long secs = days_since_epoch(num(0, 4), num(5, 2), num(8, 2)) * 86400
              + num(11, 2) * 3600 + num(14, 2) * 60 + num(17, 2);
  double frac = 0, scale = 1000;
  if (p[19] == '.')
    for (const char* f = p + 20; std::isdigit(static_cast<unsigned char>(*f));
         ++f)
      frac += (*f - '0') * (scale /= 10);
  ms = static_cast<double>(secs) * 1000.0 + frac;
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

std::vector<long> pid_list(const std::string& s) {
  std::vector<long> pids;
  for (size_t pos = 0; pos <= s.size();) {
    auto comma = std::min(s.find(',', pos), s.size());
    auto part = s.substr(pos, comma - pos);
    char* end = nullptr;
    long pid = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || pid < 0)
      throw std::invalid_argument("--server-pid: expected P[,P...]");
    if (pid > 0)
      pids.push_back(pid);
    pos = comma + 1;
  }
  return pids;
}

class load {
public:
  load(asio::io_context& io, const options& o)
      : opt_(o),
        io_(io),
        tick_(io),
        start_timer_(io),
        signals_(io, SIGINT, SIGTERM),
        endpoint_(asio::ip::make_address(opt_.at("host")),
                  static_cast<unsigned short>(number(opt_, "port"))) {
    for (size_t i = 0; i < clients_n_; ++i) {
      clients_.push_back(std::make_unique<client>(io_));
      auto& c = *clients_.back();
      c.index = i;
      c.source = 0x7f000000u + source_base_ + i % sources_;
      auto x = static_cast<double>(i); // stall clients spread evenly
      if (std::floor((x + 1) * stall_) > std::floor(x * stall_))
        c.kind = role::stall;
    }
  }

  void start() {
    t_[0] = steady::now();
    wait_signal();
    if (start_at_ms_ <= 0)
      return begin();
    start_timer_.expires_at(std::chrono::system_clock::time_point(
        std::chrono::milliseconds(start_at_ms_)));
    start_timer_.async_wait([this](error_code ec) {
      if (!ec)
        begin();
    });
  }

  void report();

private:
  void wait_signal() {
    signals_.async_wait([this](error_code ec, int) {
      if (ec)
        return;
      if (finished_)
        return io_.stop(); // a second signal ends the check of stalls
      finish();
      wait_signal();
    });
  }

  void begin() {
    srv_[0] = sample_procs(server_pids_);
    t_[0] = steady::now();
    cpu_[0] = own_cpu_s();
    on_tick();
  }

  /// Unix ms at `t`, from the wall clock read at the last tick.
  double wall_ms_at(steady::time_point t) const {
    using ms = std::chrono::duration<double, std::milli>;
    return sys_base_ms_ + ms(t - steady_base_).count();
  }

  /// Every 5 ms: start due connects and reconnects, pace churn, expire slow
  /// clients, sample the server, end phases.
  void on_tick() {
    if (finished_)
      return;
    auto now = steady::now();
    // The wall clock as of `now`: reads derive theirs from the steady clock
    // (one clock read each); re-based every tick, so a slewing wall clock
    // moves it by nanoseconds at most.
    steady_base_ = now;
    sys_base_ms_ = unix_ms();
    double elapsed = secs(now - t_[0]);
    auto due = std::min(clients_n_, static_cast<size_t>(rate_ * elapsed) + 1);
    while (launched_ < due) {
      ++pending_;
      do_connect(*clients_[launched_++]);
    }
    while (!reconnect_at_.empty() && reconnect_at_.top().first <= now) {
      auto& c = *clients_[reconnect_at_.top().second];
      reconnect_at_.pop();
      if (c.state == phase::waiting)
        do_connect(c);
    }
    if (now >= next_sweep_) {
      next_sweep_ = now + std::chrono::milliseconds(250);
      sweep(now);
    }
    if (!server_pids_.empty() && now >= next_rss_) {
      next_rss_ = now + std::chrono::seconds(1);
      auto s = sample_procs(server_pids_, false);
      if (events_phase_)
        rss_max_ = std::max(rss_max_, s.rss_kb);
    }
    if (!events_phase_ && launched_ == clients_n_ && pending_ == 0)
      begin_events(now);
    bool churning = false; // a finite --churn-for holds the end
    if (events_phase_ && churn_ > 0) {
      double t = std::min(secs(now - t_[1]), churn_for_);
      auto n = static_cast<size_t>(std::ceil(churn_ * t));
      while (churn_due_ < n) {
        ++churn_due_;
        open_churn();
      }
      churning = std::isfinite(churn_for_)
                 && (t < churn_for_ || churners_.size() > churn_free_.size());
    }
    if (elapsed >= duration_
        || (events_phase_ && clients_done_ >= alive_ && !churning))
      return finish();
    tick_.expires_after(std::chrono::milliseconds(5));
    tick_.async_wait([this](error_code ec) {
      if (!ec)
        on_tick();
    });
  }

  void begin_events(steady::time_point now) {
    events_phase_ = true; // sample before any event of the new phase
    t_[1] = now;
    cpu_[1] = own_cpu_s();
    sleeps_[1] = own_sleeps();
    srv_[1] = sample_procs(server_pids_);
    rss_max_ = srv_[1].rss_kb;
    open_at_connected_ = alive_ + stalled_;
    baseline_ = max_seen_; // ids up to here were not fanned out to all
    if (ready_file_.empty())
      return;
    auto tmp = ready_file_ + ".tmp"; // renamed: readers never see half
    std::ofstream(tmp) << static_cast<long long>(unix_ms()) << "\n";
    if (std::rename(tmp.c_str(), ready_file_.c_str()) != 0)
      std::fprintf(stderr, "sse_load: cannot write %s\n", ready_file_.c_str());
  }

  /// Connects and heads that take too long, churn clients over 5 s.
  void sweep(steady::time_point now) {
    for (size_t i = 0; i < launched_; ++i) {
      auto& c = *clients_[i];
      if ((c.state == phase::connecting || c.state == phase::head)
          && secs(now - c.started) > connect_timeout_)
        fail(c, timeout, "no response head in time");
    }
    for (auto& c : churners_)
      if (c->state != phase::done && secs(now - c->started) > 5)
        fail(*c, timeout, "no first event within 5 s");
  }

  void open_churn() {
    client* c = nullptr;
    if (!churn_free_.empty()) {
      c = churn_free_.back();
      churn_free_.pop_back();
    } else if (churners_.size() < churn_slots_) {
      churners_.push_back(std::make_unique<client>(io_));
      c = churners_.back().get();
      c->kind = role::churn;
    } else {
      ++churn_skipped_; // every slot busy: the server is that slow
      return;
    }
    c->source = 0x7f000000u + source_base_ + churn_opened_++ % sources_;
    do_connect(*c);
  }

  void do_connect(client& c) {
    c.state = phase::connecting;
    c.started = steady::now();
    c.head.clear();
    c.chunked = false;
    c.chunk_state = 0;
    c.chunk_left = 0;
    c.size_line.clear();
    c.line.clear();
    c.has_id = c.id_field = false;
    c.data.clear();
    auto gen = ++c.gen;
    error_code ec;
    c.sock.open(tcp::v4(), ec);
    // Choose the source port at connect(): each address pair has ~28k.
    using no_port
        = asio::detail::socket_option::boolean<IPPROTO_IP,
                                               IP_BIND_ADDRESS_NO_PORT>;
    if (!ec)
      c.sock.set_option(no_port(true), ec);
    if (!ec && c.kind == role::stall) // the smallest window the kernel allows
      c.sock.set_option(asio::socket_base::receive_buffer_size(1), ec);
    if (!ec)
      c.sock.bind({asio::ip::address_v4(c.source), 0}, ec);
    if (ec)
      return fail(c, other, ec.message());
    c.sock.async_connect(endpoint_, [this, &c, gen](error_code ec) {
      if (c.gen != gen || c.state != phase::connecting)
        return;
      if (ec)
        return fail(c, kind_of(ec), ec.message());
      c.state = phase::head;
      const std::string& req = c.request.empty() ? request_ : c.request;
      asio::async_write(c.sock, asio::buffer(req),
                        [this, &c, gen](error_code ec, size_t) {
                          if (ec && c.gen == gen && c.state == phase::head)
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

  void note(size_t (&counts)[n_kinds], error_kind k, const char* who,
            const std::string& what) {
    if (counts[k]++ == 0)
      first_errors_.emplace_back(std::string(who) + kind_names[k], what);
  }

  /// Ends a connection attempt that never reached a 200 head (for churn:
  /// its first event).
  void fail(client& c, error_kind k, const std::string& what) {
    close(c);
    if (c.kind == role::churn) {
      note(churn_errors_, k, "churn ", what);
      return churn_free_.push_back(&c);
    }
    if (!c.resuming) {
      --pending_;
      return note(errors_, k, "", what);
    }
    note(reconnect_errors_, k, "reconnect ", what);
    if (k == bad_status) // EventSource gives up on a non-200 answer
      give_up(c);
    else
      schedule_reconnect(c);
  }

  /// The server ended a stream after its 200 head (resumable), or its
  /// framing was bad.
  void end_stream(client& c, bool resumable) {
    if (c.kind == role::churn)
      return fail(c, resumable ? reset : other,
                  resumable ? "stream ended before an event"
                            : "bad chunk framing");
    ++dropped_;
    protocol_errors_ += !resumable;
    close(c);
    if (reconnect_ && resumable)
      schedule_reconnect(c);
    else
      give_up(c);
  }

  void give_up(client& c) {
    c.gave_up = true;
    --alive_;
    clients_done_ -= c.new_events >= events_;
  }

  /// Like EventSource: after the last `retry:` (3 s if none, at most 10 s),
  /// with `Last-Event-ID` once an id was seen.
  void schedule_reconnect(client& c) {
    c.state = phase::waiting;
    c.resuming = true;
    long ms = c.retry_ms < 0 ? 3000 : std::min(c.retry_ms, 10000L);
    c.request = "GET " + path_ + " HTTP/1.1\r\nHost: x\r\n" + accept_;
    if (last_event_id_ && !c.last_raw.empty())
      c.request += "Last-Event-ID: " + c.last_raw + "\r\n";
    c.request += "\r\n";
    reconnect_at_.emplace(steady::now() + std::chrono::milliseconds(ms),
                          c.index);
  }

  void close(client& c) {
    c.state = phase::done;
    error_code ignored;
    c.sock.close(ignored);
  }

  void do_read(client& c) {
    auto gen = c.gen;
    c.sock.async_read_some(asio::buffer(c.buf), [this, &c, gen](error_code ec,
                                                                size_t n) {
      if (c.gen != gen || (c.state != phase::head && c.state != phase::body))
        return;
      if (ec && c.state == phase::head)
        return fail(c, kind_of(ec), ec.message());
      if (ec)
        return end_stream(c, true);
      now_ = steady::now(); // one receive time per read, one clock read
      now_sys_ms_ = wall_ms_at(now_);
      if (c.state == phase::head ? head(c, n) : body(c, c.buf, n))
        do_read(c);
    });
  }

  /// Collects the response head; false when the client stops reading.
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
    if (c.kind != role::churn)
      c.got_200 = true;
    if (c.kind == role::stall) { // reads nothing more until the end
      --pending_;
      ++stalled_;
      c.state = phase::stalled;
      return false;
    }
    if (c.resuming) {
      c.resuming = false;
      ++reconnects_;
      c.replay_upto = max_seen_;
      c.resumed_ms = now_sys_ms_;
    } else if (c.kind == role::steady) {
      --pending_;
      ++alive_;
    }
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
          end_stream(c, false);
        } else if (nl) {
          c.chunk_left = std::strtoul(c.size_line.c_str(), nullptr, 16);
          c.size_line.clear();
          c.chunk_state = 1;
          if (c.chunk_left == 0)
            end_stream(c, true); // the last chunk: the server ended it
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
    while (n > 0 && c.state == phase::body) {
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
    std::string_view l = c.line; // cleared at the end, its capacity kept
    if (!l.empty() && l.back() == '\r')
      l.remove_suffix(1);
    if (l.empty()) { // dispatch
      if (c.id_field)
        c.last_raw = c.raw_id; // EventSource keeps it for Last-Event-ID
      if (c.kind == role::churn && (c.id_field || !c.data.empty()))
        churn_done(c);
      else if (c.kind != role::churn && c.has_id && !c.data.empty())
        on_event(c); // a gap event has no id
      c.has_id = c.id_field = false;
      c.data.clear();
    } else {
      auto colon = l.find(':');
      auto field = l.substr(0, colon);
      size_t v = colon == l.npos ? l.size() : colon + 1;
      v += v < l.size() && l[v] == ' ';
      auto value = l.substr(v);
      if (field == "id") {
        c.raw_id.assign(value);
        c.id_field = true;
        c.has_id = parse_id(c.raw_id, c.id);
      } else if (field == "data") {
        c.data.append(value);
      } else if (field == "retry" && !value.empty() && value.size() < 10
                 && value.find_first_not_of("0123456789") == value.npos) {
        c.retry_ms = std::stol(std::string(value));
      } // comments (empty field) and `event` are ignored
    }
    c.line.clear();
  }

  /// A churn client is done: it closes like a browser tab.
  void churn_done(client& c) {
    ++churn_ok_;
    error_code ec; // read what is there, so that close() sends FIN, not RST
    while (!ec && c.sock.available(ec) > 0)
      c.sock.read_some(asio::buffer(c.buf), ec);
    close(c);
    churn_free_.push_back(&c);
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
    ++s.receivers;
    clients_done_ += ++c.new_events == events_;
    double ts = 0;
    bool has_ts = parse_timestamp(c.data, ts);
    // Resent after a reconnect: not a live delivery.
    if (c.id <= c.replay_upto || (has_ts && ts < c.resumed_ms)) {
      ++events_replayed_;
      return;
    }
    if (s.live++ == 0)
      s.first = now_;
    s.last = now_;
    if (has_ts && s.live == 1)
      s.first_latency_ms = now_sys_ms_ - ts;
    if (has_ts)
      latencies_.push_back(now_sys_ms_ - ts);
    else
      ++bad_timestamps_;
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    t_[2] = steady::now();
    cpu_[2] = own_cpu_s();
    sleeps_[2] = own_sleeps();
    srv_[2] = sample_procs(server_pids_);
    if (!events_phase_)
      t_[1] = t_[2], cpu_[1] = cpu_[2], sleeps_[1] = sleeps_[2];
    else
      rss_max_ = std::max(rss_max_, srv_[2].rss_kb);
    start_timer_.cancel();
    for (auto& c : clients_) {
      open_at_end_ += c->kind == role::steady && c->state == phase::body;
      if (c->state != phase::stalled) {
        close(*c);
      } else {
        c->state = phase::draining;
        ++draining_;
        error_code ignored; // a wider window (at most 64 KiB: no scaling)
        c->sock.set_option(asio::socket_base::receive_buffer_size(1 << 20),
                           ignored);
        drain(*c);
      }
    }
    for (auto& c : churners_)
      close(*c);
    if (draining_ == 0)
      return io_.stop();
    tick_.expires_after(std::chrono::seconds(3)); // then the rest is open
    tick_.async_wait([this](error_code ec) {
      if (!ec)
        io_.stop();
    });
  }

  /// Reads a stalled client's backlog (up to the server's whole send
  /// buffer): EOF or an error means the server closed it.
  void drain(client& c) {
    // One thread reads: all drains share one buffer, the data is dropped.
    c.sock.async_read_some(asio::buffer(drain_buf_), [this, &c](error_code ec,
                                                                size_t) {
      if (ec == asio::error::operation_aborted || c.state != phase::draining)
        return;
      if (!ec)
        return drain(c);
      ++stall_closed_;
      close(c);
      if (--draining_ == 0)
        io_.stop();
    });
  }

  const options opt_;
  asio::io_context& io_;
  const size_t clients_n_ = std::stoul(opt_.at("clients"));
  const double rate_ = number(opt_, "rate");
  const double duration_ = number(opt_, "duration");
  const double connect_timeout_ = number(opt_, "connect-timeout");
  const unsigned sources_ = std::stoul(opt_.at("sources"));
  const unsigned source_base_ = std::stoul(opt_.at("source-base"));
  const int events_ = std::stoi(opt_.at("events"));
  const std::vector<long> server_pids_ = pid_list(opt_.at("server-pid"));
  const double stall_ = number(opt_, "stall");
  const bool reconnect_ = number(opt_, "reconnect") != 0;
  const bool last_event_id_ = number(opt_, "last-event-id") != 0;
  const double churn_ = number(opt_, "churn");
  const double churn_for_ = number(opt_, "churn-for");
  const size_t churn_slots_
      = std::max<size_t>(1, static_cast<size_t>(std::ceil(churn_ * 5)));
  const std::string path_ = opt_.at("path");
  const std::string ready_file_ = opt_.at("ready-file");
  const long long start_at_ms_ = std::stoll(opt_.at("start-at"));
  asio::steady_timer tick_;
  asio::system_timer start_timer_;
  asio::signal_set signals_;
  tcp::endpoint endpoint_;
  const std::string accept_ = "Accept: text/event-stream\r\n"; // for nchan
  const std::string request_
      = "GET " + path_ + " HTTP/1.1\r\nHost: x\r\n" + accept_ + "\r\n";
  std::vector<std::unique_ptr<client>> clients_, churners_;
  std::vector<client*> churn_free_;
  std::priority_queue<std::pair<steady::time_point, size_t>,
                      std::vector<std::pair<steady::time_point, size_t>>,
                      std::greater<>>
      reconnect_at_; // (when, client index)
  size_t launched_ = 0, pending_ = 0, alive_ = 0, clients_done_ = 0;
  size_t open_at_connected_ = 0, open_at_end_ = 0, dropped_ = 0;
  size_t protocol_errors_ = 0, reconnects_ = 0, events_replayed_ = 0;
  size_t errors_[n_kinds] = {}, reconnect_errors_[n_kinds] = {};
  size_t events_in_phase_ = 0, bad_timestamps_ = 0;
  size_t stalled_ = 0, stall_closed_ = 0, draining_ = 0;
  size_t churn_due_ = 0, churn_opened_ = 0, churn_ok_ = 0, churn_skipped_ = 0;
  size_t churn_errors_[n_kinds] = {};
  std::vector<std::pair<std::string, std::string>> first_errors_;
  bool events_phase_ = false, finished_ = false;
  uint64_t max_seen_ = 0, baseline_ = 0;
  std::unordered_map<uint64_t, id_stat> ids_;
  std::vector<double> latencies_;
  std::vector<char> drain_buf_ = std::vector<char>(65536);
  steady::time_point now_, next_sweep_, next_rss_, steady_base_;
  double now_sys_ms_ = 0, sys_base_ms_ = 0;
  long rss_max_ = 0;
  // Index 0: start, 1: all clients connected, 2: end.
  steady::time_point t_[3];
  double cpu_[3] = {};
  double sleeps_[3] = {}; // 1 and 2 only: the event phase
  proc_sample srv_[3];
};

void load::report() {
  std::vector<double> per_client, spreads;
  std::vector<uint64_t> keys;
  size_t connected = 0, dups = 0, ooo = 0, bad_clients = 0, missing = 0;
  for (auto& [id, s] : ids_)
    keys.push_back(id);
  std::sort(keys.begin(), keys.end());
  for (auto& c : clients_) {
    if (!c->got_200)
      continue;
    ++connected;
    if (c->kind != role::steady)
      continue;
    per_client.push_back(c->events);
    dups += c->dups;
    ooo += c->out_of_order;
    bad_clients += c->dups + c->out_of_order > 0;
    // Ids of the event phase up to its last one that it never got.
    auto upto = std::upper_bound(keys.begin(), keys.end(), c->last_id);
    auto got = static_cast<size_t>(c->new_events);
    if (!c->gave_up)
      missing += std::max(got, static_cast<size_t>(upto - keys.begin())) - got;
  }
  size_t min_recv = ids_.empty() ? 0 : SIZE_MAX;
  for (auto& [id, s] : ids_) {
    if (s.live > 0)
      spreads.push_back(1000 * secs(s.last - s.first));
    min_recv = std::min(min_recv, s.receivers);
  }
  // SSE_LOAD_SPREADS=1: each update's fan-out spread and the latency of
  // its first receipt on stderr, in id order (which updates are slow: the
  // first, or any; and whether they start late or spread wide).
  if (std::getenv("SSE_LOAD_SPREADS"))
    for (auto id : keys)
      if (auto& s = ids_[id]; s.live > 0)
        std::fprintf(stderr,
                     "sse_load: update %llu: first after %.1f ms, spread "
                     "%.1f ms\n",
                     static_cast<unsigned long long>(id), s.first_latency_ms,
                     1000 * secs(s.last - s.first));
  double wall = secs(t_[2] - t_[0]);
  double cpu_pct = 100 * (cpu_[2] - cpu_[0]) / wall;
  double ev_wall = secs(t_[2] - t_[1]); // too short a phase says nothing
  double ev_cpu_pct = ev_wall < 0.5 ? NAN : 100 * (cpu_[2] - cpu_[1]) / ev_wall;
  bool pids = !server_pids_.empty();
  // A sample counts when some pid was read (the gone ones count as 0 RSS);
  // differences only between samples that read every pid (a gone process's
  // CPU is unknown, not 0).
  double rss[3];
  bool whole[3];
  for (int i = 0; i < 3; ++i) {
    auto n = static_cast<int>(server_pids_.size());
    rss[i] = pids && srv_[i].missing < n ? srv_[i].rss_kb : NAN;
    whole[i] = pids && srv_[i].missing == 0;
  }
  double srv_cpu = whole[1] && whole[2] ? srv_[2].cpu_s - srv_[1].cpu_s : NAN;
  double srv_sys = whole[1] && whole[2] ? srv_[2].sys_s - srv_[1].sys_s : NAN;
  double srv_vcs = whole[1] && whole[2]
                       ? srv_[2].cs_voluntary - srv_[1].cs_voluntary
                       : NAN;
  double srv_ics = whole[1] && whole[2]
                       ? srv_[2].cs_involuntary - srv_[1].cs_involuntary
                       : NAN;
  double rss_delta = whole[0] && whole[1] ? (rss[1] - rss[0]) * 1024.0 : NAN;
  std::printf("sse_load %s:%s%s  clients %zu  rate %s/s  sources %u from "
              ".%u  events %d",
              opt_.at("host").c_str(), opt_.at("port").c_str(), path_.c_str(),
              clients_n_, opt_.at("rate").c_str(), sources_, source_base_,
              events_);
  if (stall_ > 0)
    std::printf("  stall %s", opt_.at("stall").c_str());
  if (reconnect_)
    std::printf("  reconnect (last-event-id %s)",
                last_event_id_ ? "on" : "off");
  if (churn_ > 0)
    std::printf("  churn %s/s for %s s", opt_.at("churn").c_str(),
                opt_.at("churn-for").c_str());
  std::printf("\n");
  for (auto& [kind, what] : first_errors_)
    std::printf("first %s error: %s\n", kind.c_str(), what.c_str());
  if (pids && srv_[2].missing)
    std::printf("note: %d server pid(s) gone at the end count as 0\n",
                srv_[2].missing);

  // One table row per group; the JSON line names each number group_name.
  const double lat[] = {pct(latencies_, 50), pct(latencies_, 90),
                        pct(latencies_, 99), pct(latencies_, 100)};
  // clang-format off
  const metric m[] = {
    {"connect", "launched", launched_}, {"connect", "ok", connected},
    {"connect", "seconds", secs(t_[1] - t_[0])},
    {"connect", "open_at_end", open_at_end_},
    {"errors", "refused", errors_[refused]},
    {"errors", "timeout", errors_[timeout]},
    {"errors", "reset", errors_[reset]},
    {"errors", "status", errors_[bad_status]},
    {"errors", "other", errors_[other]},
    {"errors", "dropped", dropped_}, {"errors", "protocol", protocol_errors_},
    {"errors", "reconnects", reconnects_},
    {"events", "client_min", pct(per_client, 0)},
    {"events", "client_p50", pct(per_client, 50)},
    {"events", "client_max", pct(per_client, 100)},
    {"events", "new_ids", ids_.size()}, {"events", "receivers_min", min_recv},
    {"events", "in_phase", events_in_phase_},
    {"events", "missing", missing}, {"events", "replayed", events_replayed_},
    {"latency_ms", "p50", lat[0]}, {"latency_ms", "p90", lat[1]},
    {"latency_ms", "p99", lat[2]}, {"latency_ms", "max", lat[3]},
    {"latency_ms", "n", latencies_.size()},
    {"fanout_ms", "p50", pct(spreads, 50)},
    {"fanout_ms", "max", pct(spreads, 100)},
    {"order", "duplicates", dups}, {"order", "out_of_order", ooo},
    {"order", "clients", bad_clients},
    {"order", "bad_timestamps", bad_timestamps_},
    {"reconnect", "refused", reconnect_errors_[refused]},
    {"reconnect", "timeout", reconnect_errors_[timeout]},
    {"reconnect", "reset", reconnect_errors_[reset]},
    {"reconnect", "status", reconnect_errors_[bad_status]},
    {"reconnect", "other", reconnect_errors_[other]},
    {"stall", "clients", stalled_}, {"stall", "closed", stall_closed_},
    {"stall", "open", stalled_ - stall_closed_},
    {"churn", "opened", churn_opened_}, {"churn", "ok", churn_ok_},
    {"churn", "refused", churn_errors_[refused]},
    {"churn", "timeout", churn_errors_[timeout]},
    {"churn", "reset", churn_errors_[reset]},
    {"churn", "status", churn_errors_[bad_status]},
    {"churn", "other", churn_errors_[other]},
    {"churn", "skipped", churn_skipped_},
    {"client", "cpu_pct", cpu_pct}, {"client", "event_cpu_pct", ev_cpu_pct},
    {"client", "wall_s", wall},
    {"client", "us_per_event", (cpu_[2] - cpu_[1]) * 1e6 / events_in_phase_},
    {"client", "sleeps_per_event", (sleeps_[2] - sleeps_[1]) / events_in_phase_},
    {"server", "rss_kb_start", rss[0]},
    {"server", "rss_kb_connected", rss[1]},
    {"server", "rss_kb_max", rss_max_ > 0 ? rss_max_ : NAN},
    {"server", "rss_kb_end", rss[2]},
    {"server", "bytes_per_client", std::round(rss_delta / open_at_connected_)},
    {"server", "cpu_s", srv_cpu},
    // At the end, before the clients close: what their teardown costs is
    // measured from here (compare.py).
    {"server", "cpu_s_total_end", whole[2] ? srv_[2].cpu_s : NAN},
    {"server", "us_per_event", srv_cpu * 1e6 / events_in_phase_},
    {"server", "sys_s", srv_sys},
    {"server", "sys_us_per_event", srv_sys * 1e6 / events_in_phase_},
    {"server", "sleeps", srv_vcs},
    {"server", "sleeps_per_event", srv_vcs / events_in_phase_},
    {"server", "preemptions", srv_ics},
    {"server", "preemptions_per_event", srv_ics / events_in_phase_},
    {"server", "pids_missing", pids ? srv_[2].missing : NAN},
  };
  // clang-format on
  auto text = [](double v) {
    return num(v, v == std::floor(v) ? 0 : 3);
  };
  auto shown = [&](const metric& x) { // the JSON line keeps every key
    auto is = [&](const char* g) {
      return std::strcmp(x.group, g) == 0;
    };
    return !(is("server") && !pids) && !(is("reconnect") && !reconnect_)
           && !(is("stall") && stall_ <= 0) && !(is("churn") && churn_ <= 0);
  };
  for (auto& x : m) {
    if (!shown(x))
      continue;
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
      = {{"host", "127.0.0.1"}, {"port", "8080"},          {"path", "/stream"},
         {"clients", "100"},    {"rate", "1000"},          {"sources", "1"},
         {"source-base", "1"},  {"duration", "60"},        {"events", "10"},
         {"server-pid", "0"},   {"connect-timeout", "10"}, {"stall", "0"},
         {"reconnect", "0"},    {"last-event-id", "1"},    {"churn", "0"},
         {"churn-for", "inf"},  {"ready-file", ""},        {"start-at", "0"},
         {"pace-ms", "0"}};
  for (int i = 1; i < argc; i += 2) {
    std::string a = argv[i];
    if (i + 1 == argc || a.compare(0, 2, "--") || !opt.count(a.substr(2))) {
      std::fprintf(
          stderr,
          "usage: sse_load [--host 127.0.0.1] [--port 8080] [--path /stream] "
          "[--clients N] [--rate R] [--sources K] [--source-base B] "
          "[--duration S] [--events E] [--server-pid P[,P...]] "
          "[--connect-timeout S] [--stall F] [--reconnect 0|1] "
          "[--last-event-id 0|1] [--churn R] [--churn-for S] "
          "[--ready-file PATH] [--start-at UNIX_MS] [--pace-ms MS]\n");
      return 2;
    }
    opt[a.substr(2)] = argv[i + 1];
  }
  try {
    auto flag = [&](const char* name) {
      return opt[name] == "0" || opt[name] == "1";
    };
    const auto& path = opt["path"];
    if (number(opt, "sources") < 1 || number(opt, "source-base") < 1
        || number(opt, "source-base") + number(opt, "sources") - 1 > 254
        || number(opt, "rate") <= 0 || number(opt, "events") < 1
        || number(opt, "clients") < 1)
      throw std::invalid_argument("need sources >= 1, source-base >= 1, "
                                  "source-base + sources - 1 <= 254, "
                                  "clients >= 1, rate > 0, events >= 1");
    if (!(number(opt, "stall") >= 0 && number(opt, "stall") <= 1)
        || !(number(opt, "churn") >= 0) || !(number(opt, "churn-for") > 0)
        || !flag("reconnect") || !flag("last-event-id")
        || !(number(opt, "pace-ms") >= 0 && number(opt, "pace-ms") <= 1000))
      throw std::invalid_argument("need stall in 0..1, churn >= 0, "
                                  "churn-for > 0, reconnect and "
                                  "last-event-id 0 or 1, pace-ms in 0..1000");
    if (path.empty() || path[0] != '/'
        || std::any_of(path.begin(), path.end(), [](char ch) {
             return static_cast<unsigned char>(ch) <= ' ';
           }))
      throw std::invalid_argument("--path: need /..., no spaces");
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    auto fds = number(opt, "clients") + 5 * number(opt, "churn") + 16;
    if (rl.rlim_cur < fds)
      std::fprintf(stderr,
                   "sse_load: open files limit %lu is too low for "
                   "%s clients: run several processes\n",
                   static_cast<unsigned long>(rl.rlim_cur),
                   opt["clients"].c_str());
    asio::io_context io(1);
    load l(io, opt);
    l.start();
    // --pace-ms: the client never waits in epoll for the server. It takes
    // what is ready, then sleeps that long on a timer, so that a server's
    // write never has to wake it: on loopback that wake-up is the sender's
    // kernel work, charged to the server, and how often it happens depends
    // on whether the client keeps up (docs/performance.md). Receipt times
    // are late by up to that long.
    auto pace
        = std::chrono::duration<double, std::milli>(number(opt, "pace-ms"));
    if (pace.count() > 0)
      while (!io.stopped()) {
        io.poll();
        std::this_thread::sleep_for(pace);
      }
    else
      io.run();
    l.report();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sse_load: %s\n", e.what());
    return 2;
  }
  return 0;
}

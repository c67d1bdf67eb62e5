#include "app/config.hpp"

#include "app/defaults.hpp"
#include "core/redis_url.hpp"
#include "core/units.hpp"
#include "core/url.hpp"

#include <boost/program_options.hpp>

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace btcstream {

namespace po = boost::program_options;
using std::chrono::milliseconds;

namespace {

/// A bad value: the message names the flag.
struct bad_value : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string ms_text(milliseconds d) {
  return std::to_string(d.count()) + "ms";
}

po::options_description options() {
  po::options_description d{"btcstream: live BTC/USD prices over "
                            "Server-Sent Events.\n\nOptions (each also "
                            "BTCSTREAM_<FLAG> in the environment, e.g. "
                            "BTCSTREAM_HISTORY_TTL)"};
  auto s = [](const char* def) {
    return po::value<std::string>()->value_name(def);
  };
  // clang-format off
  d.add_options()
    ("help", "print this help and exit")
    ("version", "print the version and exit")
    ("healthcheck", "probe /healthz of the service on --listen; exit 0 if "
     "healthy (for container health checks)")
    ("listen", s("0.0.0.0:8080"), "address and port to serve on")
    ("reuse-port", po::value<std::string>()->implicit_value("true")
       ->value_name("false"),
     "share --listen's port with other processes (SO_REUSEPORT)")
    ("admin-listen", s("none"),
     "address and port for /metrics, /healthz, /readyz, /api/v1/info only")
    ("max-stream-age", s("off"),
     "end each stream cleanly after this age (+-10%), so clients reconnect "
     "and spread over nodes")
    ("state-file", s("none"),
     "one node: save the buffer here on shutdown, load it at start")
    ("interval", s("5s"), "time between upstream polls")
    ("history-ttl", s("1h"), "how long updates stay in the buffer")
    ("history-max", s("ceil(ttl/interval)+1"), "buffer capacity (updates)")
    ("upstream-url", s("https://data-api.coindesk.com/..."),
     "CoinDesk latest-tick URL (http:// for tests)")
    ("upstream-ca", s("system store"), "PEM file with an extra trusted CA")
    ("api-key", s("none"), "CoinDesk API key (also COINDESK_API_KEY)")
    ("api-key-file", s("none"), "file holding the API key")
    ("web-root", s("installed web/"), "directory of the web UI")
    ("heartbeat", s("15s"), "comment heartbeat after this much silence")
    ("retry", s("3s"), "SSE retry hint (jittered +-20% per client)")
    ("client-queue", s("256KiB"), "unsent bytes before a client is dropped")
    ("stall-timeout", s("60s"), "no write progress before a client is dropped")
    ("max-clients", s("open files - 100"), "concurrent SSE clients")
    ("max-http-connections", s("512"),
     "concurrent connections that are not streams")
    ("shutdown-grace", s("1s"),
     "after SIGTERM, serve open connections this long (at most 4s)")
    ("cors-origin", s("*"), "Access-Control-Allow-Origin")
    ("log-level", s("info"), "debug, info, warn or error")
    ("log-format", s("text"), "text or json (one object per line)")
    ("redis", s("none"),
     "redis://[[user]:password@]host[:port][/db 0-15] enables cluster mode")
    ("redis-password-file", s("none"), "file holding the Redis password")
    ("redis-prefix", s("btcstream"), "prefix of btcstream's keys in Redis")
    ("node-id", s("hostname:pid"), "this node's name in the cluster")
    ("lease-ttl", s("10s"), "the leader's lease (cluster mode)")
    ("io-threads", s("2"), "Asio threads (benchmark before changing)")
    ("actor-threads", s("2"), "actor scheduler threads")
    ("actor-policy", s("sharing"),
     "actor scheduler: sharing (ours) or stealing (CAF's; benchmark before changing)");
  // clang-format on
  return d;
}

std::optional<std::string> get(const po::variables_map& vm, const char* k) {
  if (vm.count(k))
    return vm[k].as<std::string>();
  return std::nullopt;
}

/// The longest duration a flag takes: a year. Timers and CAF count
/// nanoseconds in 64 bits (about 292 years), so a longer one would wrap into
/// the past (every client dropped as stalled, say) instead of "never".
constexpr milliseconds max_duration = std::chrono::hours{24 * 365};

milliseconds duration_of(const po::variables_map& vm, const char* k,
                         milliseconds def, bool positive) {
  auto v = get(vm, k);
  if (!v)
    return def;
  auto d = parse_duration(*v);
  if (!d || (positive && d->count() <= 0) || *d > max_duration)
    throw bad_value{"--" + std::string{k} + ": invalid duration '" + *v
                    + "' (expected e.g. 250ms, 5s, 2min, 1h"
                    + (positive ? ", above zero" : "") + ", at most 8760h)"};
  return *d;
}

uint64_t count_of(const po::variables_map& vm, const char* k, uint64_t def,
                  uint64_t lo, uint64_t hi) {
  auto v = get(vm, k);
  if (!v)
    return def;
  bool digits = !v->empty() && v->size() <= 19;
  for (char c : *v)
    digits = digits && std::isdigit(static_cast<unsigned char>(c));
  uint64_t n = digits ? std::stoull(*v) : 0;
  if (!digits || n < lo || n > hi)
    throw bad_value{"--" + std::string{k} + ": invalid number '" + *v
                    + "' (expected " + std::to_string(lo) + " to "
                    + std::to_string(hi) + ")"};
  return n;
}

/// A secret from a file, trailing white space dropped; `flag` names it in
/// errors.
std::string read_secret_file(const std::string& path, const char* flag) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw bad_value{std::string{"--"} + flag + ": '" + path
                    + "' is not a readable file"};
  std::ifstream in{path, std::ios::binary};
  if (!in)
    throw bad_value{std::string{"--"} + flag + ": cannot read '" + path + "'"};
  std::string key;
  try {
    key.assign(std::istreambuf_iterator<char>{in},
               std::istreambuf_iterator<char>{});
  } catch (const std::exception& e) {
    throw bad_value{std::string{"--"} + flag + ": cannot read '" + path
                    + "': " + e.what()};
  }
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back())))
    key.pop_back();
  if (key.empty())
    throw bad_value{std::string{"--"} + flag + ": '" + path + "' is empty"};
  return key;
}

std::string default_node_id() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof(host), "node");
  return std::string{host} + ":" + std::to_string(getpid());
}

/// The cluster-mode flags; `--redis` absent leaves one node in memory.
void build_cluster(const po::variables_map& vm, config& c) {
  auto redis = get(vm, "redis");
  for (auto* k :
       {"redis-password-file", "redis-prefix", "node-id", "lease-ttl"})
    if (!redis && vm.count(k))
      throw bad_value{std::string{"--"} + k + ": only with --redis"};
  if (!redis)
    return;
  std::string why;
  if (!parse_redis_url(*redis, &why))
    throw bad_value{"--redis: " + why};
  c.redis_url = *redis;
  if (auto f = get(vm, "redis-password-file"))
    c.redis_password = read_secret_file(*f, "redis-password-file");
  c.redis_prefix = get(vm, "redis-prefix").value_or("btcstream");
  if (c.redis_prefix.empty() || c.redis_prefix.size() > 64
      || c.redis_prefix.find_first_of(" \t\r\n{}") != std::string::npos)
    throw bad_value{"--redis-prefix: expected 1 to 64 characters without "
                    "white space or braces, got '"
                    + c.redis_prefix + "'"};
  c.node_id = get(vm, "node-id").value_or(default_node_id());
  if (c.node_id.empty() || c.node_id.size() > 128
      || c.node_id.find_first_of(" \t\r\n") != std::string::npos)
    throw bad_value{"--node-id: expected 1 to 128 characters without white "
                    "space, got '"
                    + c.node_id + "'"};
  c.lease_ttl = duration_of(vm, "lease-ttl", c.lease_ttl, true);
  if (c.lease_ttl < std::chrono::milliseconds{300})
    throw bad_value{"--lease-ttl: at least 300ms (renewed every third)"};
}

/// HOST:PORT (IPv6 in brackets) into host and port; `flag` names errors.
std::pair<std::string, std::string> host_port(const std::string& value,
                                              const char* flag) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == value.size()
      || (value.front() == '[' && value[colon - 1] != ']'))
    throw bad_value{std::string{"--"} + flag + ": expected HOST:PORT, got '"
                    + value + "'"};
  auto host = value.substr(0, colon);
  bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed)
    host = host.substr(1, host.size() - 2);
  // An address, not a name: the listener binds it as it is, and a name
  // found out only at the bind would exit 1 (restarted) instead of 2.
  in6_addr any;
  if (!(bracketed ? ::inet_pton(AF_INET6, host.c_str(), &any)
                  : ::inet_pton(AF_INET, host.c_str(), &any)))
    throw bad_value{std::string{"--"} + flag + ": expected HOST:PORT with an "
                    + "IP address for HOST (IPv6 in brackets), got '" + value
                    + "'"};
  auto port = value.substr(colon + 1);
  for (char ch : port)
    if (!std::isdigit(static_cast<unsigned char>(ch)) || port.size() > 5
        || std::stoul(port) > 65535)
      throw bad_value{std::string{"--"} + flag + ": invalid port in '" + value
                      + "'"};
  return {host, port};
}

/// Refuses a --state-file that could not be written at shutdown, rather than
/// find it out then and lose the buffer.
void check_state_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw bad_value{"--state-file: '" + path + "' is a directory"};
  auto dir = fs::path{path}.parent_path();
  if (dir.empty())
    dir = ".";
  if (!fs::is_directory(dir, ec))
    throw bad_value{"--state-file: no directory '" + dir.string() + "'"};
  // Written as a new file beside it, then renamed: the directory must take
  // new files.
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw bad_value{"--state-file: cannot write in '" + dir.string() + "'"};
}

/// The edit distance of two names, their dashes left out.
size_t distance(std::string_view a, std::string_view b) {
  std::string x, y;
  for (char ch : a)
    if (ch != '-')
      x += ch;
  for (char ch : b)
    if (ch != '-')
      y += ch;
  std::vector<size_t> row(y.size() + 1);
  for (size_t j = 0; j <= y.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= y.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (x[i - 1] == y[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[y.size()];
}

/// The flag a BTCSTREAM_* variable that names none was most likely meant
/// for (`history-ttl` for BTCSTREAM_HISTORYTTL or BTCSTREAM_history_ttl), if
/// any is that close. Other BTCSTREAM_* variables (the test suites' own)
/// are not settings of the service and pass without a word.
std::optional<std::string> near_flag(const po::options_description& desc,
                                     const std::string& name) {
  for (auto& o : desc.options()) {
    auto& flag = o->long_name();
    if (flag != "help" && flag != "version" && flag != "healthcheck"
        && distance(name, flag) <= 2)
      return flag;
  }
  return std::nullopt;
}

/// BTCSTREAM_<FLAG> of a flag.
std::string env_name(const std::string& flag) {
  std::string var = "BTCSTREAM_";
  for (char ch : flag)
    var += ch == '-' ? '_'
                     : static_cast<char>(
                         std::toupper(static_cast<unsigned char>(ch)));
  return var;
}

bool switch_of(const po::variables_map& vm, const char* k) {
  auto v = get(vm, k);
  if (!v)
    return false;
  if (*v == "true" || *v == "1" || *v == "yes")
    return true;
  if (*v == "false" || *v == "0" || *v == "no")
    return false;
  throw bad_value{std::string{"--"} + k + ": expected true or false, got '" + *v
                  + "'"};
}

config build(const po::variables_map& vm, const po::variables_map& flags) {
  config c;
  std::tie(c.listen_host, c.listen_port)
      = host_port(get(vm, "listen").value_or(defaults::listen), "listen");
  c.reuse_port = switch_of(vm, "reuse-port");
  if (auto admin = get(vm, "admin-listen"))
    std::tie(c.admin_host, c.admin_port) = host_port(*admin, "admin-listen");
  if (auto age = get(vm, "max-stream-age"); age && *age != "off") {
    try {
      c.max_stream_age = duration_of(vm, "max-stream-age",
                                     std::chrono::milliseconds{0}, true);
    } catch (const bad_value& e) {
      throw bad_value{std::string{e.what()} + ", or off"};
    }
  }
  c.state_file = get(vm, "state-file").value_or("");
  if (!c.state_file.empty())
    check_state_file(c.state_file);
  c.interval = duration_of(vm, "interval", defaults::interval, true);
  c.history_ttl = duration_of(vm, "history-ttl", defaults::history_ttl, true);
  // Both at most a year (duration_of): no overflow here.
  auto derived
      = static_cast<uint64_t>((c.history_ttl.count() + c.interval.count() - 1)
                              / c.interval.count())
        + 1;
  constexpr uint64_t max_history = 10'000'000;
  c.history_max = count_of(vm, "history-max", derived, 1, max_history);
  // The buffer is allocated whole at start: a default that large is a
  // mistake to report, not gigabytes to allocate.
  if (c.history_max > max_history)
    throw bad_value{
        "--history-max: --history-ttl " + std::to_string(c.history_ttl.count())
        + "ms at --interval " + std::to_string(c.interval.count()) + "ms needs "
        + std::to_string(c.history_max) + " entries, over the maximum of "
        + std::to_string(max_history)
        + ": set --history-max, a shorter --history-ttl or a "
          "longer --interval"};
  c.upstream_url = get(vm, "upstream-url").value_or(defaults::upstream_url);
  if (!parse_url(c.upstream_url))
    throw bad_value{"--upstream-url: not an http(s) URL: '"
                    + redact_url(c.upstream_url) + "'"};
  c.upstream_ca = get(vm, "upstream-ca").value_or("");
  // The key: flags, then BTCSTREAM_* variables, then COINDESK_API_KEY.
  // --api-key and --api-key-file from the same source are ambiguous.
  auto key = get(vm, "api-key");
  auto key_file = get(vm, "api-key-file");
  bool flag_key = flags.count("api-key") > 0;
  bool flag_file = flags.count("api-key-file") > 0;
  if (flag_key && flag_file)
    throw bad_value{"--api-key and --api-key-file: give only one"};
  if (!flag_key && !flag_file && key && key_file)
    throw bad_value{"--api-key and --api-key-file (BTCSTREAM_API_KEY and "
                    "BTCSTREAM_API_KEY_FILE): give only one"};
  std::string key_source;
  if (flag_file || (!flag_key && key_file)) {
    c.api_key = read_secret_file(*key_file, "api-key-file");
    key_source = "--api-key-file";
  } else if (key) {
    c.api_key = *key;
    key_source = "--api-key";
  } else if (auto fallback = get(vm, "coindesk-api-key")) {
    c.api_key = *fallback;
    key_source = "COINDESK_API_KEY";
  }
  if (c.api_key.find_first_of("\r\n") != std::string::npos)
    throw bad_value{key_source + ": the key must be one line"};
  c.web_root = get(vm, "web-root").value_or("");
  c.heartbeat = duration_of(vm, "heartbeat", defaults::heartbeat, true);
  c.retry = duration_of(vm, "retry", defaults::retry, true);
  auto q = get(vm, "client-queue");
  c.client_queue = defaults::client_queue;
  if (q) {
    auto n = parse_size(*q);
    if (!n || *n < 1024)
      throw bad_value{"--client-queue: invalid size '" + *q
                      + "' (expected e.g. 256KiB, at least 1KiB)"};
    c.client_queue = *n;
  }
  c.stall_timeout
      = duration_of(vm, "stall-timeout", defaults::stall_timeout, true);
  c.max_clients = count_of(vm, "max-clients", 0, 1, 10'000'000);
  c.max_http_connections = count_of(
      vm, "max-http-connections", defaults::max_http_connections, 1, 1'000'000);
  c.shutdown_grace
      = duration_of(vm, "shutdown-grace", defaults::shutdown_grace, false);
  if (c.shutdown_grace > defaults::exit_within - std::chrono::seconds{1})
    throw bad_value{"--shutdown-grace: at most 4s (shutdown must end within "
                    "5 s)"};
  c.cors_origin = get(vm, "cors-origin").value_or(defaults::cors_origin);
  if (c.cors_origin.empty()
      || c.cors_origin.find_first_of("\r\n") != std::string::npos)
    throw bad_value{"--cors-origin: invalid value"};
  auto level = get(vm, "log-level").value_or("info");
  if (level == "debug")
    c.level = log_level::debug;
  else if (level == "info")
    c.level = log_level::info;
  else if (level == "warn")
    c.level = log_level::warn;
  else if (level == "error")
    c.level = log_level::error;
  else
    throw bad_value{"--log-level: expected debug, info, warn or error, got '"
                    + level + "'"};
  auto format = get(vm, "log-format").value_or("text");
  if (format == "text")
    c.format = log_format::text;
  else if (format == "json")
    c.format = log_format::json;
  else
    throw bad_value{"--log-format: expected text or json, got '" + format
                    + "'"};
  build_cluster(vm, c);
  if (!c.state_file.empty() && !c.redis_url.empty())
    throw bad_value{"--state-file: only without --redis (a cluster keeps its "
                    "history in Redis)"};
  c.healthcheck = vm.count("healthcheck") > 0;
  c.io_threads = static_cast<unsigned>(
      count_of(vm, "io-threads", defaults::io_threads, 1, 64));
  c.actor_threads = static_cast<unsigned>(
      count_of(vm, "actor-threads", defaults::actor_threads, 1, 64));
  auto policy = get(vm, "actor-policy").value_or("sharing");
  if (policy == "sharing")
    c.work_stealing = false;
  else if (policy == "stealing")
    c.work_stealing = true;
  else
    throw bad_value{"--actor-policy: expected sharing or stealing, got '"
                    + policy + "'"};
  return c;
}

} // namespace

config_result parse_config(int argc, const char* const* argv) {
  auto desc = options();
  config_result out;
  // A probe's answer is 0 or 1 (2 means something else to Docker): a bad
  // setting makes it fail with 1 like any other reason it cannot probe.
  bool healthcheck = false;
  for (int i = 1; i < argc; ++i)
    healthcheck = healthcheck || std::string_view{argv[i]} == "--healthcheck";
  try {
    po::variables_map vm;
    po::variables_map flags; // the command line alone, for the key's sources
    // Whole flag names only, and no stray words: `btcstream 127.0.0.1:9000`
    // must not start on the default address.
    auto from_cli = po::command_line_parser(argc, argv)
                        .options(desc)
                        .positional(po::positional_options_description{})
                        .style(po::command_line_style::default_style
                               & ~po::command_line_style::allow_guessing)
                        .run();
    po::store(from_cli, flags);
    po::store(from_cli, vm);
    // Environment after flags: store() keeps the first value it sees.
    std::vector<std::string> unknown;
    auto from_env = [&desc, &unknown](const std::string& var) -> std::string {
      const std::string prefix = "BTCSTREAM_";
      if (var.compare(0, prefix.size(), prefix) != 0)
        return {};
      std::string flag;
      bool upper = true;
      for (char ch : var.substr(prefix.size())) {
        upper = upper && !std::islower(static_cast<unsigned char>(ch));
        flag += ch == '_' ? '-'
                          : static_cast<char>(
                              std::tolower(static_cast<unsigned char>(ch)));
      }
      if (flag == "help" || flag == "version" || flag == "healthcheck")
        return {};
      if (upper && desc.find_nothrow(flag, false))
        return flag;
      if (auto near = near_flag(desc, flag))
        unknown.push_back("environment variable " + var
                          + " names no flag (ignored): did you mean "
                          + env_name(*near) + "?");
      return {};
    };
    po::store(po::parse_environment(desc, from_env), vm);
    // An empty variable is no setting (BTCSTREAM_API_KEY= must not hide
    // COINDESK_API_KEY); an empty flag is still an error where it is one.
    for (auto it = vm.begin(); it != vm.end();) {
      auto* s = boost::any_cast<std::string>(&it->second.value());
      if (s && s->empty() && !flags.count(it->first))
        it = vm.erase(it);
      else
        ++it;
    }
    // COINDESK_API_KEY is the weakest source of the key: kept apart so that
    // it never clashes with --api-key-file.
    po::options_description hidden;
    hidden.add_options()("coindesk-api-key", po::value<std::string>());
    po::store(po::parse_environment(hidden,
                                    [](const std::string& var) -> std::string {
                                      return var == "COINDESK_API_KEY"
                                                 ? "coindesk-api-key"
                                                 : "";
                                    }),
              vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::ostringstream os;
      os << desc
         << "\nDurations take ms, s, min (or m), h; sizes take B (or a "
            "bare number of bytes), KiB, MiB, GiB.\nThe key is also read "
            "from COINDESK_API_KEY.\n";
      out.output = os.str();
      return out;
    }
    if (vm.count("version")) {
      out.output = "btcstream " BTCSTREAM_VERSION "\n";
      return out;
    }
    out.cfg = build(vm, flags);
    out.cfg->warnings = std::move(unknown);
  } catch (const po::too_many_positional_options_error&) {
    out.exit_code = healthcheck ? 1 : 2;
    out.output = "btcstream: a word that is not a flag was given (every "
                 "setting is --name value)\nTry 'btcstream --help'.\n";
  } catch (const std::exception& e) {
    out.exit_code = healthcheck ? 1 : 2;
    out.output
        = std::string{"btcstream: "} + e.what() + "\nTry 'btcstream --help'.\n";
  }
  return out;
}

std::string describe(const config& c) {
  std::ostringstream os;
  os << "config listen=" << c.listen_host << ":" << c.listen_port
     << " reuse_port=" << (c.reuse_port ? "true" : "false") << " admin_listen="
     << (c.admin_host.empty() ? "none" : c.admin_host + ":" + c.admin_port)
     << " max_stream_age="
     << (c.max_stream_age.count() ? ms_text(c.max_stream_age) : "off")
     << " state_file=" << (c.state_file.empty() ? "none" : c.state_file)
     << " interval=" << ms_text(c.interval)
     << " history_ttl=" << ms_text(c.history_ttl)
     << " history_max=" << c.history_max
     << " upstream_url=" << redact_url(c.upstream_url)
     << " upstream_ca=" << (c.upstream_ca.empty() ? "system" : c.upstream_ca)
     << " api_key=" << (c.api_key.empty() ? "none" : "<redacted>")
     << " web_root=" << c.web_root << " heartbeat=" << ms_text(c.heartbeat)
     << " retry=" << ms_text(c.retry) << " client_queue=" << c.client_queue
     << " stall_timeout=" << ms_text(c.stall_timeout)
     << " max_clients=" << c.max_clients
     << " max_http_connections=" << c.max_http_connections
     << " shutdown_grace=" << ms_text(c.shutdown_grace)
     << " cors_origin=" << c.cors_origin << " io_threads=" << c.io_threads
     << " actor_threads=" << c.actor_threads
     << " actor_policy=" << (c.work_stealing ? "stealing" : "sharing");
  if (!c.redis_url.empty())
    os << " redis=" << parse_redis_url(c.redis_url)->describe()
       << " redis_prefix=" << c.redis_prefix << " node_id=" << c.node_id
       << " lease_ttl=" << ms_text(c.lease_ttl);
  return os.str();
}

} // namespace btcstream

// floor_server: the least a server can do to fan one SSE event out over
// TCP — epoll, one send(2) per client per event, nothing else (no queue, no
// timers per client, no actors). compare.py runs it under the same load as
// btcstream and nginx + nchan: its CPU per delivered event is the kernel's
// share that no server avoids on this machine. With --threads T the writes
// of each event are split over T threads (slices of the clients), which
// bounds the latency any T-thread server can reach under that load. Not a
// product: a client whose socket is full is simply closed.
//
// The writes are send(2) by default: on Linux 6.18 a write(2) of the same
// bytes to a TCP socket costs the kernel ~0.35 µs more (its file layer;
// send_cost.cpp measures it). `--syscall write` is the floor as it was up
// to run V of docs/performance.md.
//
// `--slices rotate` hands each slice to the next thread at every event, so
// with 2 threads every socket is written from the other core each time:
// what a server pays when it does not keep a client on one core (as
// btcstream's shared job queue does not). `fixed` (the default) keeps it.
//
// `--sndbuf BYTES` and `--user-timeout-ms MS` set SO_SNDBUF and
// TCP_USER_TIMEOUT on every client, as btcstream does for its slow-consumer
// handling (sse_session.cpp): what those two options cost the kernel.
// Neither is set by default.
//
//   floor_server --port P [--interval-ms 1000] [--threads 1]
//                [--syscall send|write] [--slices fixed|rotate]
//                [--sndbuf BYTES] [--user-timeout-ms MS]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <barrier>
#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

volatile std::sig_atomic_t stop = 0;

struct client {
  std::string head; // the request until its empty line
  bool streaming = false;
};

long long now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
}

/// One event, in HTTP/1.1 chunked framing, as btcstream would write it.
std::string event_chunk(long long id, double price) {
  std::time_t secs = id / 1000;
  std::tm t{};
  gmtime_r(&secs, &t);
  char ts[40], body[256], chunk[300];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &t);
  int n = std::snprintf(body, sizeof body,
                        "id: %lld\ndata: {\"timestamp\":\"%s.%03lldZ\","
                        "\"price\":%.2f}\n\n",
                        id, ts, id % 1000, price);
  int m = std::snprintf(chunk, sizeof chunk, "%x\r\n%s\r\n", n, body);
  return std::string(chunk, static_cast<size_t>(m));
}

/// `text` as a whole decimal int, or false.
bool parse_int(const char* text, int& out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < INT_MIN || v > INT_MAX)
    return false;
  out = static_cast<int>(v);
  return true;
}

int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0
      || listen(fd, 4096) != 0) {
    std::perror("floor_server: listen");
    std::exit(2);
  }
  return fd;
}

} // namespace

int main(int argc, char** argv) {
  int port = 0, interval_ms = 1000, threads = 1, sndbuf = 0, user_timeout = 0;
  bool use_send = true, rotate = false;
  bool usage_ok = argc % 2 == 1; // every option has a value
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port"))
      usage_ok = parse_int(argv[i + 1], port) && usage_ok;
    else if (!std::strcmp(argv[i], "--interval-ms"))
      usage_ok = parse_int(argv[i + 1], interval_ms) && usage_ok;
    else if (!std::strcmp(argv[i], "--threads"))
      usage_ok = parse_int(argv[i + 1], threads) && usage_ok;
    else if (!std::strcmp(argv[i], "--syscall")
             && (!std::strcmp(argv[i + 1], "send")
                 || !std::strcmp(argv[i + 1], "write")))
      use_send = !std::strcmp(argv[i + 1], "send");
    else if (!std::strcmp(argv[i], "--slices")
             && (!std::strcmp(argv[i + 1], "fixed")
                 || !std::strcmp(argv[i + 1], "rotate")))
      rotate = !std::strcmp(argv[i + 1], "rotate");
    else if (!std::strcmp(argv[i], "--sndbuf"))
      usage_ok = parse_int(argv[i + 1], sndbuf) && usage_ok;
    else if (!std::strcmp(argv[i], "--user-timeout-ms"))
      usage_ok = parse_int(argv[i + 1], user_timeout) && usage_ok;
    else
      usage_ok = false;
  }
  if (!usage_ok || port <= 0 || interval_ms <= 0 || threads < 1 || threads > 64
      || sndbuf < 0 || user_timeout < 0) {
    std::fprintf(stderr, "usage: floor_server --port P [--interval-ms MS] "
                         "[--threads 1..64] [--syscall send|write] "
                         "[--slices fixed|rotate] [--sndbuf BYTES] "
                         "[--user-timeout-ms MS]\n");
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  std::signal(SIGTERM, [](int) {
    stop = 1;
  });
  std::signal(SIGINT, [](int) {
    stop = 1;
  });
  std::signal(SIGPIPE, SIG_IGN);

  int lfd = listen_on(port);
  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  itimerspec its{};
  its.it_interval.tv_sec = interval_ms / 1000;
  its.it_interval.tv_nsec = (interval_ms % 1000) * 1000000L;
  its.it_value = its.it_interval;
  timerfd_settime(tfd, 0, &its, nullptr);
  for (int fd : {lfd, tfd}) {
    epoll_event ev{EPOLLIN, {}};
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  std::unordered_map<int, client> clients;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"
                           "\r\nCache-Control: no-cache\r\nTransfer-Encoding: "
                           "chunked\r\n\r\n";
  long long last_id = 0, dropped = 0;
  double price = 97000.0;
  auto drop = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    clients.erase(fd);
  };
  // One event's fan-out: slice t of `targets` is written by thread t (0 is
  // this one); the helpers wait at `start` and report at `done`. The map and
  // epoll are touched by this thread only: failed writes are dropped after.
  std::string chunk;
  std::vector<int> targets;
  std::vector<std::vector<int>> failed(static_cast<size_t>(threads));
  size_t event_no = 0; // the slices' turn (--slices rotate)
  auto write_slice = [&](int t) {
    size_t n = targets.size(), k = static_cast<size_t>(threads);
    if (rotate) // a bijection: failed[t] below is still this thread's alone
      t = static_cast<int>((static_cast<size_t>(t) + event_no) % k);
    size_t from = n * static_cast<size_t>(t) / k;
    size_t to = n * (static_cast<size_t>(t) + 1) / k;
    for (size_t i = from; i < to; ++i)
      if ((use_send ? send(targets[i], chunk.data(), chunk.size(), MSG_NOSIGNAL)
                    : write(targets[i], chunk.data(), chunk.size()))
          != static_cast<ssize_t>(chunk.size()))
        failed[static_cast<size_t>(t)].push_back(targets[i]);
  };
  std::barrier start(threads), done(threads);
  bool quit = false; // read by the helpers after `start`
  std::vector<std::thread> helpers;
  for (int t = 1; t < threads; ++t)
    helpers.emplace_back([&, t] {
      for (;;) {
        start.arrive_and_wait();
        if (quit)
          return;
        write_slice(t);
        done.arrive_and_wait();
      }
    });
  epoll_event evs[256];
  while (!stop) {
    int n = epoll_wait(ep, evs, 256, 500);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (int c; (c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (sndbuf > 0)
            setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
          if (user_timeout > 0)
            setsockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                       sizeof user_timeout);
          epoll_event ev{EPOLLIN, {}};
          ev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
          clients[c];
        }
      } else if (fd == tfd) {
        uint64_t ticks;
        if (read(tfd, &ticks, sizeof ticks) < 0)
          continue;
        last_id = std::max(now_ms(), last_id + 1);
        price += 0.01;
        chunk = event_chunk(last_id, price);
        targets.clear();
        for (auto& [c, state] : clients)
          if (state.streaming)
            targets.push_back(c);
        for (auto& f : failed)
          f.clear();
        ++event_no;
        start.arrive_and_wait(); // the helpers write their slices
        write_slice(0);
        done.arrive_and_wait();
        for (auto& f : failed)
          for (int c : f) {
            ++dropped;
            drop(c);
          }
      } else {
        char buf[4096];
        auto got = read(fd, buf, sizeof buf);
        if (got <= 0) {
          drop(fd);
          continue;
        }
        auto& c = clients[fd];
        if (c.streaming)
          continue;
        c.head.append(buf, static_cast<size_t>(got));
        if (c.head.find("\r\n\r\n") != std::string::npos) {
          c.streaming = true;
          std::string().swap(c.head);
          if (write(fd, head.data(), head.size())
              != static_cast<ssize_t>(head.size()))
            drop(fd);
        } else if (c.head.size() > 8192) {
          drop(fd);
        }
      }
    }
  }
  quit = true;
  start.arrive_and_wait();
  for (auto& h : helpers)
    h.join();
  std::fprintf(stderr, "floor_server: %zu clients at the end, %lld dropped\n",
               clients.size(), dropped);
  return 0;
}

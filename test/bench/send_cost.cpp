// send_cost: what the kernel charges one thread for one small write to a
// loopback TCP socket, by the shape of the write. An SSE frame of ~100
// bytes goes to N connected sockets in turn (a reader thread drains them
// all), as:
//   sendmsg, 3 parts  the HTTP/1.1 chunk as head, frame and CRLF (btcstream
//                     before 35b8e57)
//   sendmsg, 1 part   the chunk from one buffer
//   send, 1 buffer    the same with send(2) (btcstream now)
//   write, 1 buffer   the same with write(2) (floor_server)
// The shapes take turns in short blocks, so drift of the machine's speed
// falls on all of them alike. Prints the writing thread's CPU per write
// and its kernel part. Loopback only; ends by itself; exits 1 when the
// reader did not get every byte written.
//
//   send_cost [--connections 2000] [--rounds 200]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::string_view text
    = "id: 1796000000123\ndata: "
      "{\"timestamp\":\"2026-12-06T18:00:00.123Z\",\"price\":97123.45}\n\n";

struct cpu {
  double all_us = 0;    // user + kernel
  double kernel_us = 0; // kernel
};

cpu thread_cpu() {
  rusage r{};
  getrusage(RUSAGE_THREAD, &r);
  auto us = [](const timeval& t) {
    return t.tv_sec * 1e6 + t.tv_usec;
  };
  return {us(r.ru_utime) + us(r.ru_stime), us(r.ru_stime)};
}

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(2);
}

struct shape {
  const char* name;
  ssize_t (*write)(int fd, const std::string& chunk, std::string_view head);
  cpu used;
  long writes = 0;
};

ssize_t sendmsg_3(int fd, const std::string&, std::string_view head) {
  static constexpr std::string_view crlf = "\r\n";
  std::array<iovec, 3> iov{{{const_cast<char*>(head.data()), head.size()},
                            {const_cast<char*>(text.data()), text.size()},
                            {const_cast<char*>(crlf.data()), crlf.size()}}};
  msghdr m{};
  m.msg_iov = iov.data();
  m.msg_iovlen = iov.size();
  return ::sendmsg(fd, &m, MSG_NOSIGNAL);
}

ssize_t sendmsg_1(int fd, const std::string& chunk, std::string_view) {
  iovec iov{const_cast<char*>(chunk.data()), chunk.size()};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  return ::sendmsg(fd, &m, MSG_NOSIGNAL);
}

ssize_t send_1(int fd, const std::string& chunk, std::string_view) {
  return ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
}

ssize_t write_1(int fd, const std::string& chunk, std::string_view) {
  return ::write(fd, chunk.data(), chunk.size());
}

} // namespace

int main(int argc, char** argv) {
  int n = 2000;
  int rounds = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--connections")
      n = std::atoi(argv[i + 1]);
    else if (a == "--rounds")
      rounds = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: send_cost [--connections N] [--rounds R]\n");
      return 2;
    }
  }
  if (n < 1 || rounds < 1) {
    std::fprintf(stderr, "send_cost: N and R must be positive\n");
    return 2;
  }

  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, (sockaddr*)&addr, sizeof addr) != 0
      || ::listen(listener, 4096) != 0
      || ::getsockname(listener, (sockaddr*)&addr, &len) != 0)
    die("listen");
  std::vector<int> writers;
  std::vector<int> readers;
  for (int i = 0; i < n; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || ::connect(c, (sockaddr*)&addr, sizeof addr) != 0)
      die("connect");
    int s = ::accept(listener, nullptr, nullptr);
    if (s < 0)
      die("accept");
    int one = 1;
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(s, F_SETFL, O_NONBLOCK);
    ::fcntl(c, F_SETFL, O_NONBLOCK);
    writers.push_back(s);
    readers.push_back(c);
  }

  std::atomic<bool> stop{false};
  std::atomic<long> bytes_read{0};
  std::thread reader([&] {
    int ep = ::epoll_create1(0);
    for (int fd : readers) {
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    std::array<epoll_event, 256> ready{};
    std::array<char, 65536> buf{};
    for (;;) {
      bool last = stop.load();
      int k = ::epoll_wait(ep, ready.data(), ready.size(), last ? 0 : 50);
      for (int j = 0; j < k; ++j)
        for (ssize_t got;
             (got = ::read(ready[j].data.fd, buf.data(), buf.size())) > 0;)
          bytes_read += got;
      if (last && k <= 0)
        break;
    }
    ::close(ep);
  });

  std::array<char, 24> hex{};
  int head_size = std::snprintf(hex.data(), hex.size(), "%zx\r\n", text.size());
  std::string_view head{hex.data(), static_cast<size_t>(head_size)};
  std::string chunk = std::string(head) + std::string(text) + "\r\n";

  std::array<shape, 4> shapes{{{"sendmsg, 3 parts", sendmsg_3, {}},
                               {"sendmsg, 1 part", sendmsg_1, {}},
                               {"send, 1 buffer", send_1, {}},
                               {"write, 1 buffer", write_1, {}}}};
  constexpr int blocks_per_shape = 10;
  int rounds_per_block = std::max(1, rounds / blocks_per_shape);
  long bytes_written = 0;
  for (int block = 0; block < blocks_per_shape * int(shapes.size()); ++block) {
    auto& sh = shapes[static_cast<size_t>(block) % shapes.size()];
    for (int r = 0; r < rounds_per_block; ++r) {
      auto before = thread_cpu();
      for (int fd : writers) {
        auto w = sh.write(fd, chunk, head);
        if (w > 0)
          bytes_written += w;
      }
      auto after = thread_cpu();
      sh.used.all_us += after.all_us - before.all_us;
      sh.used.kernel_us += after.kernel_us - before.kernel_us;
      sh.writes += n;
      // Let the reader drain, off the clock: one event's fan-out at a time.
      ::usleep(2000);
    }
  }
  stop = true;
  reader.join();

  std::printf("%d connections, %ld writes per shape of %zu bytes\n", n,
              shapes[0].writes, chunk.size());
  std::printf("%-18s %14s %12s\n", "shape", "CPU per write", "of it kernel");
  for (auto& sh : shapes)
    std::printf("%-18s %11.3f µs %9.3f µs\n", sh.name,
                sh.used.all_us / double(sh.writes),
                sh.used.kernel_us / double(sh.writes));
  if (bytes_read != bytes_written) {
    std::fprintf(stderr, "send_cost: wrote %ld bytes, the reader got %ld\n",
                 bytes_written, bytes_read.load());
    return 1;
  }
  return 0;
}

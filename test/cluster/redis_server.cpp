#include "redis_server.hpp"

#include "core/redis_value.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace btcstream::test {

namespace {

// Binds port 0 and gives the port back: free now, and Linux does not hand
// it out again at once.
unsigned short free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0
      || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// One blocking PING then INFO server (after AUTH) on one connection: the
// pid of the redis-server that answered PONG (up and done loading its AOF),
// or -1. Another process may hold the port: its answer is not ours.
pid_t serving_pid(unsigned short port, const std::string& password) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 500000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); // connect too
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  pid_t pid = -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string out;
    if (!password.empty())
      out += encode_command({"AUTH", password});
    out += encode_command({"PING"});
    out += encode_command({"INFO", "server"});
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL)
        == static_cast<ssize_t>(out.size())) {
      static const std::string key = "\r\nprocess_id:";
      std::string in;
      char buf[4096];
      ssize_t n;
      auto complete = [&] {
        auto at = in.find(key);
        return at != std::string::npos
               && in.find("\r\n", at + key.size()) != std::string::npos;
      };
      while (!complete() && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
        in.append(buf, static_cast<size_t>(n));
      if (in.find("+PONG\r\n") != std::string::npos && complete())
        pid = static_cast<pid_t>(
            std::atol(in.c_str() + in.find(key) + key.size()));
    }
  }
  ::close(fd);
  return pid;
}

// What `path` holds from byte `from` on ("" when it cannot be read).
std::string file_from(const std::string& path, std::uintmax_t from) {
  std::ifstream in{path, std::ios::binary};
  if (!in)
    return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

} // namespace

redis_server::redis_server(std::string password)
    : password_(std::move(password)) {
  char tmpl[] = "/tmp/btcstream-redis-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  // The free port may be taken between free_port() and Redis's bind: then
  // another one.
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    if (try_start())
      return;
    if (attempt == 5)
      throw std::runtime_error("redis-server found no free port in 5 "
                               "attempts; see "
                               + dir_ + "/redis.log");
  }
}

redis_server::~redis_server() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string redis_server::url(int db) const {
  std::string auth = password_.empty() ? "" : ":" + password_ + "@";
  return "redis://" + auth + "127.0.0.1:" + std::to_string(port_) + "/"
         + std::to_string(db);
}

void redis_server::start(bool keep_data) {
  if (!keep_data) {
    for (auto& e : std::filesystem::directory_iterator(dir_))
      std::filesystem::remove_all(e.path());
  }
  // The same port as before: another process may hold it for a while (one
  // that got it as a free port while Redis was down); retry, bounded.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (!try_start()) {
    if (std::chrono::steady_clock::now() > until)
      throw std::runtime_error("redis-server: port " + std::to_string(port_)
                               + " still in use after 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
}

bool redis_server::try_start() {
  auto log = dir_ + "/redis.log";
  std::error_code ec;
  auto log_size = std::filesystem::file_size(log, ec);
  if (ec)
    log_size = 0;
  std::vector<std::string> args{"redis-server",
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--dir",
                                dir_,
                                "--appendonly",
                                "yes",
                                "--appendfsync",
                                "always",
                                "--save",
                                "",
                                "--daemonize",
                                "no",
                                "--logfile",
                                log};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(),
                     environ)
      != 0)
    throw std::runtime_error("cannot start redis-server");
  paused_ = false;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (file_from(log, log_size).find("Address already in use")
          != std::string::npos)
        return false;
      throw std::runtime_error("redis-server exited; see " + log);
    }
    if (serving_pid(port_, password_) == pid_)
      return true;
    if (std::chrono::steady_clock::now() > until) {
      kill();
      throw std::runtime_error("redis-server does not answer PING");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

void redis_server::kill() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGKILL);
  if (paused_)
    ::kill(pid_, SIGCONT);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
  paused_ = false;
}

void redis_server::restart(bool keep_data) {
  kill();
  start(keep_data);
}

void redis_server::pause() {
  ::kill(pid_, SIGSTOP);
  paused_ = true;
}

void redis_server::resume() {
  ::kill(pid_, SIGCONT);
  paused_ = false;
}

} // namespace btcstream::test

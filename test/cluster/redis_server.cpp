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

// One blocking PING (after AUTH); true when it answered PONG, i.e. it is
// up and done loading its AOF.
bool answers_ping(unsigned short port, const std::string& password) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 500000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    std::string out;
    if (!password.empty())
      out += encode_command({"AUTH", password});
    out += encode_command({"PING"});
    if (::send(fd, out.data(), out.size(), MSG_NOSIGNAL)
        == static_cast<ssize_t>(out.size())) {
      std::string in;
      char buf[256];
      ssize_t n;
      while (in.find("PONG") == std::string::npos
             && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
        in.append(buf, static_cast<size_t>(n));
      ok = in.find("+PONG\r\n") != std::string::npos;
    }
  }
  ::close(fd);
  return ok;
}

} // namespace

redis_server::redis_server(std::string password)
    : password_(std::move(password)) {
  char tmpl[] = "/tmp/btcstream-redis-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  port_ = free_port();
  start(true);
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
                                dir_ + "/redis.log"};
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
  wait_ready();
}

void redis_server::wait_ready() {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (!answers_ping(port_, password_)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited; see " + dir_
                               + "/redis.log");
    }
    if (std::chrono::steady_clock::now() > until)
      throw std::runtime_error("redis-server does not answer PING");
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

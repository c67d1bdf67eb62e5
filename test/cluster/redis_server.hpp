#pragma once

#include <string>
#include <sys/types.h>

namespace btcstream::test {

/// A private redis-server on a free loopback port, in its own temp dir,
/// with an fsync-always AOF: started by the constructor (which waits until
/// it answers PING), killed and removed by the destructor.
class redis_server {
public:
  /// Starts redis-server, with `--requirepass password` unless empty.
  explicit redis_server(std::string password = {});
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  /// The port it listens on (127.0.0.1).
  unsigned short port() const { return port_; }
  /// `redis://[:password@]127.0.0.1:<port>/<db>`.
  std::string url(int db = 0) const;

  /// Kills it with SIGKILL (a crash) and waits for it.
  void kill();
  /// Starts it again on the same port (retrying for up to 10 s while
  /// another process holds it); with `keep_data` false its data dir is
  /// emptied first (Redis came back empty).
  void start(bool keep_data = true);
  /// kill() then start(keep_data).
  void restart(bool keep_data = true);
  /// SIGSTOP: the process stops answering, the kernel keeps the socket.
  void pause();
  /// SIGCONT after pause().
  void resume();

private:
  /// Spawns redis-server on port_ and waits until it answers as itself;
  /// false when it exited because the port was in use.
  bool try_start();

  std::string password_;
  std::string dir_;
  unsigned short port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

} // namespace btcstream::test

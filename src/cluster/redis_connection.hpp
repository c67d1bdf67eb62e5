#pragma once

#include "core/cluster_log.hpp"
#include "core/redis_url.hpp"
#include "core/redis_value.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct redisReader;

namespace btcstream {

/// The outcome of one command: a reply (an error reply is a reply too), or
/// why there is none.
struct redis_result {
  /// `none` when `value` holds the reply.
  log_failure failure = log_failure::none;
  /// A description of the failure for logs; never holds the password.
  std::string error;
  /// The reply.
  redis_value value;
};

/// One TCP connection to Redis, driven by Asio on a strand, with hiredis's
/// reply parser (DESIGN.md, "Cluster mode"; docs/architecture.md says why).
///
/// Commands are pipelined: written in the order issued, answered in order.
/// Each has its own deadline; a timeout, an I/O error or an unparsable reply
/// fails every pending command and closes the socket. A command issued while
/// disconnected connects first (resolve, connect, AUTH, SELECT), so a failed
/// connection is retried by the next command. Every callback runs exactly
/// once, on the connection's strand (an Asio thread); it must not block.
class redis_connection : public std::enable_shared_from_this<redis_connection> {
public:
  /// The callback of one command.
  using callback = std::function<void(redis_result)>;

  /// A connection (not yet connected) to `ep` on `ioc`; resolve, connect,
  /// AUTH and SELECT together must finish within `connect_timeout`.
  static std::shared_ptr<redis_connection>
  create(boost::asio::io_context& ioc, redis_endpoint ep,
         std::chrono::milliseconds connect_timeout = std::chrono::seconds{2});

  /// Use `create`.
  redis_connection(boost::asio::io_context& ioc, redis_endpoint ep,
                   std::chrono::milliseconds connect_timeout);
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Sends `args` as one command (any thread); `done` gets the reply, or a
  /// failure if none came within `timeout` of this call (which includes
  /// the time to connect).
  void command(std::vector<std::string> args, std::chrono::milliseconds timeout,
               callback done);

  /// Fails everything pending with `connect` "stopped" and closes the
  /// socket (any thread); later commands fail at once, on the caller's
  /// thread.
  void stop();

  /// The endpoint, password redacted, for logs.
  std::string describe() const { return ep_.describe(); }

private:
  using clock = std::chrono::steady_clock;
  enum class kind { user, auth, select };
  enum class phase { idle, connecting, handshake, ready };

  struct pending {
    std::string bytes;
    clock::time_point deadline;
    callback done;
    kind what = kind::user;
  };

  void enqueue(pending p);
  void do_connect();
  void on_resolve(uint64_t epoch, const boost::system::error_code& ec,
                  const boost::asio::ip::tcp::resolver::results_type& r);
  void on_connect(uint64_t epoch, const boost::system::error_code& ec);
  void on_connect_timeout(uint64_t epoch, const boost::system::error_code& ec);
  void do_write();
  void on_write(uint64_t epoch, const boost::system::error_code& ec);
  void do_read();
  void on_read(uint64_t epoch, const boost::system::error_code& ec, size_t n);
  bool on_reply(redis_value v);
  void arm_deadline();
  void on_deadline(const boost::system::error_code& ec);
  void set_socket_options();
  void fail_all(log_failure f, std::string error);
  std::string redact(std::string text) const;

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer deadline_timer_;
  redis_endpoint ep_;
  std::chrono::milliseconds connect_timeout_;
  std::atomic<bool> stopped_{false};
  // Everything below lives on the strand.
  phase phase_ = phase::idle;
  // Bumped on every close: handlers of an older connection return at once.
  uint64_t epoch_ = 0;
  std::deque<pending> unsent_;
  std::deque<pending> in_flight_;
  std::string write_buf_;
  bool writing_ = false;
  std::vector<char> read_buf_;
  redisReader* reader_ = nullptr;
  clock::time_point armed_for_ = clock::time_point::max();
};

} // namespace btcstream

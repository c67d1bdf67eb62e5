#pragma once

#include "http/server_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <string>

namespace btcstream {

/// Accepts connections and gives each its own strand and `http_session`.
/// When accept fails for lack of descriptors (EMFILE/ENFILE), it waits a
/// moment instead of spinning.
class listener : public std::enable_shared_from_this<listener> {
public:
  /// @param admin whether this is the admin listener (--admin-listen).
  listener(boost::asio::io_context& ioc, std::shared_ptr<server_context> ctx,
           bool admin = false);

  /// Binds and listens; throws `boost::system::system_error` naming the
  /// cause (the caller exits non-zero). With `reuse_port`, several
  /// processes may bind the same address and the kernel spreads new
  /// connections over them (SO_REUSEPORT).
  void open(const boost::asio::ip::tcp::endpoint& ep, bool reuse_port = false);

  /// The bound address (the real port when asked for port 0).
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  /// Starts accepting.
  void run();

  /// Stops accepting; thread-safe.
  void stop();

private:
  void do_accept();
  void on_accept(boost::system::error_code ec,
                 boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  std::shared_ptr<server_context> ctx_;
  bool admin_ = false;
  bool accept_failing_ = false; // logged once per run of failures
};

} // namespace btcstream

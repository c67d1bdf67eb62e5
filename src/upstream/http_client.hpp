#pragma once

#include "core/upstream_client.hpp"
#include "core/url.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace btcstream {

/// Makes the TLS context for the upstream: the system's trusted CAs plus,
/// if `extra_ca_file` is not empty, the CAs in that PEM file; TLS 1.2 or
/// later. Throws `boost::system::system_error` if the file cannot be used.
std::shared_ptr<boost::asio::ssl::context>
make_tls_context(const std::string& extra_ca_file);

/// The upstream client over HTTP/1.1 with keep-alive (Beast), plain or TLS
/// (SNI, certificate and host-name verification). One request at a time; a
/// reused connection that fails before the first response byte is retried
/// once at once on a fresh connection.
class http_client final : public upstream_client,
                          public std::enable_shared_from_this<http_client> {
public:
  /// @param tls the TLS context; required for an https URL.
  /// @param api_key sent as `Authorization: Apikey <key>` when not empty.
  /// @param timeout for a whole request (resolve, connect, write, read).
  http_client(boost::asio::io_context& ioc, url target,
              std::shared_ptr<boost::asio::ssl::context> tls,
              std::string api_key, std::chrono::milliseconds timeout);

  void fetch(std::function<void(fetch_result)> done) override;
  void stop() override;

private:
  using tls_stream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

  boost::beast::tcp_stream& tcp();
  void start();
  void on_resolve(boost::beast::error_code ec,
                  boost::asio::ip::tcp::resolver::results_type results);
  void on_connect(boost::beast::error_code ec);
  void on_handshake(boost::beast::error_code ec);
  void do_write();
  void on_write(boost::beast::error_code ec);
  void on_read(boost::beast::error_code ec);
  void fail(const std::string& what, boost::beast::error_code ec);
  void close();
  void complete(fetch_result r);

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::resolver resolver_;
  /// The lookup's deadline (the request's): Asio's resolver has none.
  boost::asio::steady_timer resolve_timer_;
  std::shared_ptr<boost::asio::ssl::context> tls_ctx_;
  std::optional<boost::beast::tcp_stream> plain_;
  std::optional<tls_stream> tls_;
  boost::beast::flat_buffer buffer_;
  boost::beast::http::request<boost::beast::http::empty_body> request_;
  std::optional<
      boost::beast::http::response_parser<boost::beast::http::string_body>>
      parser_;
  url target_;
  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point deadline_;
  std::function<void(fetch_result)> done_;
  /// The last TLS session, offered on reconnects for a short handshake.
  std::unique_ptr<SSL_SESSION, void (*)(SSL_SESSION*)> tls_session_{
      nullptr, SSL_SESSION_free};
  uint64_t requests_ = 0;  // numbers the requests, for late lookups
  uint64_t resolving_ = 0; // the request whose lookup is pending, or 0
  bool connected_ = false; // a kept-alive connection is open
  bool reused_ = false;    // the request in flight runs on a reused one
  bool stopped_ = false;
};

} // namespace btcstream

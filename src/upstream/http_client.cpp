#include "upstream/http_client.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/ssl.h>

namespace btcstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;

std::shared_ptr<ssl::context> make_tls_context(const std::string& extra_ca) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                   | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                   | ssl::context::no_tlsv1_1);
  ctx->set_default_verify_paths();
  if (!extra_ca.empty())
    ctx->load_verify_file(extra_ca);
  ctx->set_verify_mode(ssl::verify_peer);
  return ctx;
}

http_client::http_client(asio::io_context& ioc, url target,
                         std::shared_ptr<ssl::context> tls, std::string api_key,
                         std::chrono::milliseconds timeout)
    : strand_(asio::make_strand(ioc)),
      resolver_(strand_),
      resolve_timer_(strand_),
      tls_ctx_(std::move(tls)),
      target_(std::move(target)),
      timeout_(timeout) {
  request_.version(11);
  request_.method(http::verb::get);
  request_.target(target_.target);
  auto host = target_.host;
  if (host.find(':') != std::string::npos)
    host = "[" + host + "]";
  if (target_.port != (target_.scheme == "https" ? "443" : "80"))
    host += ":" + target_.port;
  request_.set(http::field::host, host);
  request_.set(http::field::user_agent, "btcstream/" BTCSTREAM_VERSION);
  request_.set(http::field::accept, "application/json");
  if (!api_key.empty())
    request_.set(http::field::authorization, "Apikey " + api_key);
  request_.keep_alive(true);
}

beast::tcp_stream& http_client::tcp() {
  return tls_ ? beast::get_lowest_layer(*tls_) : *plain_;
}

void http_client::fetch(std::function<void(fetch_result)> done) {
  asio::post(strand_, [self = shared_from_this(), done = std::move(done)]() {
    if (self->stopped_ || self->done_) {
      fetch_result r;
      r.failure = transport_error::connect;
      r.error = self->stopped_ ? "client stopped" : "request in flight";
      done(std::move(r));
      return;
    }
    self->done_ = std::move(done);
    self->deadline_ = std::chrono::steady_clock::now() + self->timeout_;
    ++self->requests_;
    self->start();
  });
}

void http_client::stop() {
  asio::post(strand_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->resolver_.cancel();
    self->resolve_timer_.cancel();
    self->close();
    // Drop the callback: the fetcher is gone or going.
    self->done_ = nullptr;
  });
}

void http_client::close() {
  if (plain_ || tls_)
    tcp().close();
  connected_ = false;
}

void http_client::start() {
  if (connected_) {
    reused_ = true;
    do_write();
    return;
  }
  reused_ = false;
  // The lookup (getaddrinfo on Asio's resolver thread) has no deadline of
  // its own, and a slow DNS would hold the request past its timeout: the
  // timer fails it then. getaddrinfo cannot be interrupted, so its answer
  // may still come later: the request's number tells it from a newer one's.
  auto n = requests_;
  resolving_ = n;
  resolve_timer_.expires_at(deadline_);
  resolve_timer_.async_wait(
      [self = shared_from_this(), n](beast::error_code ec) {
        if (ec || self->resolving_ != n)
          return;
        self->resolving_ = 0;
        self->resolver_.cancel();
        self->fail("resolve", beast::error::timeout);
      });
  resolver_.async_resolve(
      target_.host, target_.port,
      asio::bind_executor(strand_, [self = shared_from_this(),
                                    n](beast::error_code ec, auto results) {
        if (self->resolving_ != n)
          return; // timed out, or the client stopped: already answered
        self->resolving_ = 0;
        self->resolve_timer_.cancel();
        self->on_resolve(ec, std::move(results));
      }));
}

void http_client::on_resolve(beast::error_code ec,
                             asio::ip::tcp::resolver::results_type results) {
  if (ec)
    return fail("resolve", ec);
  plain_.reset();
  tls_.reset();
  if (target_.scheme == "https")
    tls_.emplace(strand_, *tls_ctx_);
  else
    plain_.emplace(strand_);
  tcp().expires_at(deadline_);
  tcp().async_connect(
      results, [self = shared_from_this()](beast::error_code ec, const auto&) {
        self->on_connect(ec);
      });
}

void http_client::on_connect(beast::error_code ec) {
  if (ec)
    return fail("connect", ec);
  if (!tls_) {
    connected_ = true;
    do_write();
    return;
  }
  // SNI, then verify the chain and the host name.
  if (!SSL_set_tlsext_host_name(tls_->native_handle(), target_.host.c_str()))
    return fail("tls", beast::error_code{static_cast<int>(::ERR_get_error()),
                                         asio::error::get_ssl_category()});
  tls_->set_verify_callback(ssl::host_name_verification{target_.host});
  if (tls_session_)
    SSL_set_session(tls_->native_handle(), tls_session_.get());
  tcp().expires_at(deadline_);
  tls_->async_handshake(ssl::stream_base::client,
                        [self = shared_from_this()](beast::error_code ec) {
                          self->on_handshake(ec);
                        });
}

void http_client::on_handshake(beast::error_code ec) {
  if (ec)
    return fail("tls", ec);
  connected_ = true;
  do_write();
}

void http_client::do_write() {
  tcp().expires_at(deadline_);
  auto on_write = [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_write(ec);
  };
  if (tls_)
    http::async_write(*tls_, request_, std::move(on_write));
  else
    http::async_write(*plain_, request_, std::move(on_write));
}

void http_client::on_write(beast::error_code ec) {
  if (ec)
    return fail("write", ec);
  parser_.emplace();
  parser_->body_limit(1024 * 1024);
  buffer_.clear();
  auto on_read = [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_read(ec);
  };
  if (tls_)
    http::async_read(*tls_, buffer_, *parser_, std::move(on_read));
  else
    http::async_read(*plain_, buffer_, *parser_, std::move(on_read));
}

void http_client::on_read(beast::error_code ec) {
  if (ec)
    return fail("read", ec);
  auto& res = parser_->get();
  fetch_result r;
  r.status = static_cast<int>(res.result_int());
  if (auto i = res.find(http::field::retry_after); i != res.end())
    r.retry_after = std::string{i->value()};
  r.body = std::move(res.body());
  // TLS 1.3 sends its session tickets after the handshake: by the first
  // answer the session is resumable. A copy: OpenSSL marks the connection's
  // own session unusable if the connection later ends with an error (such
  // as a server closing an idle keep-alive connection without close_notify).
  if (tls_)
    if (auto* session = SSL_get_session(tls_->native_handle()))
      if (SSL_SESSION_is_resumable(session))
        tls_session_.reset(SSL_SESSION_dup(session));
  // A 1xx is not the answer (none is expected to a GET): the real one may
  // follow on this connection and would be read as the next request's.
  if (!res.keep_alive() || r.status < 200)
    close();
  complete(std::move(r));
}

void http_client::fail(const std::string& what, beast::error_code ec) {
  if (stopped_)
    return;
  bool nothing_received = !parser_ || !parser_->got_some();
  close();
  // A kept-alive connection the server closed meanwhile: retry at once on a
  // fresh one; this is not an upstream failure.
  if (reused_ && nothing_received && ec != beast::error::timeout
      && std::chrono::steady_clock::now() < deadline_) {
    parser_.reset();
    start();
    return;
  }
  fetch_result r;
  if (ec == beast::error::timeout)
    r.failure = transport_error::timeout;
  else if (what == "tls")
    r.failure = transport_error::tls;
  else
    r.failure = transport_error::connect;
  r.error
      = what + ": "
        + (ec == beast::error::timeout ? std::string{"timeout"} : ec.message());
  complete(std::move(r));
}

void http_client::complete(fetch_result r) {
  parser_.reset();
  if (auto done = std::move(done_)) {
    done_ = nullptr;
    done(std::move(r));
  }
}

} // namespace btcstream

#include "http/listener.hpp"

#include "core/log.hpp"
#include "http/http_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>

namespace btcstream {

namespace asio = boost::asio;
using boost::system::error_code;

listener::listener(asio::io_context& ioc, std::shared_ptr<server_context> ctx,
                   bool admin)
    : ioc_(ioc),
      acceptor_(asio::make_strand(ioc)),
      backoff_(acceptor_.get_executor()),
      ctx_(std::move(ctx)),
      admin_(admin) {}

void listener::open(const asio::ip::tcp::endpoint& ep, bool reuse_port) {
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  if (reuse_port)
    acceptor_.set_option(
        asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

asio::ip::tcp::endpoint listener::local_endpoint() const {
  return acceptor_.local_endpoint();
}

void listener::run() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    self->do_accept();
  });
}

void listener::stop() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    error_code ec;
    self->backoff_.cancel();
    self->acceptor_.close(ec);
  });
}

void listener::do_accept() {
  acceptor_.async_accept(
      asio::make_strand(ioc_),
      [self = shared_from_this()](error_code ec, asio::ip::tcp::socket s) {
        self->on_accept(ec, std::move(s));
      });
}

void listener::on_accept(error_code ec, asio::ip::tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open())
    return;
  if (ec) {
    // Out of descriptors (or another transient failure): back off briefly,
    // the pending connection stays in the backlog.
    if (!accept_failing_)
      log(log_level::warn,
          "listener cannot accept (backing off): " + ec.message());
    accept_failing_ = true;
    backoff_.expires_after(std::chrono::milliseconds{100});
    backoff_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec)
        self->do_accept();
    });
    return;
  }
  if (accept_failing_) {
    log(log_level::info, "listener accepts again");
    accept_failing_ = false;
  }
  auto session
      = std::make_shared<http_session>(std::move(socket), ctx_, admin_);
  // The new session counts itself: more than the bound means one too many.
  // Each listener has its own bound, so that idle connections on the public
  // port cannot shut out the admin port's scrapes and probes.
  auto all = ctx_->stats->http_sessions.load(std::memory_order_relaxed);
  auto admin = ctx_->admin_sessions.load(std::memory_order_relaxed);
  auto open = admin_ ? admin : all - admin;
  auto bound = admin_ ? ctx_->opts.max_admin_connections
                      : ctx_->opts.max_http_connections;
  if (open > static_cast<int64_t>(bound))
    session->reject_busy();
  else
    session->run();
  do_accept();
}

} // namespace btcstream

#include "cluster/redis_connection.hpp"

#include "cluster/redis_reply.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <hiredis/hiredis.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace btcstream {

namespace asio = boost::asio;
using asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

std::string describe_ms(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

} // namespace

std::shared_ptr<redis_connection>
redis_connection::create(asio::io_context& ioc, redis_endpoint ep,
                         std::chrono::milliseconds connect_timeout) {
  return std::make_shared<redis_connection>(ioc, std::move(ep),
                                            connect_timeout);
}

redis_connection::redis_connection(asio::io_context& ioc, redis_endpoint ep,
                                   std::chrono::milliseconds connect_timeout)
    : strand_(asio::make_strand(ioc)),
      resolver_(strand_),
      socket_(strand_),
      connect_timer_(strand_),
      deadline_timer_(strand_),
      ep_(std::move(ep)),
      connect_timeout_(connect_timeout),
      read_buf_(16 * 1024) {}

redis_connection::~redis_connection() {
  if (reader_)
    redisReaderFree(reader_);
}

void redis_connection::command(std::vector<std::string> args,
                               std::chrono::milliseconds timeout,
                               callback done) {
  if (stopped_) {
    done({log_failure::connect, "stopped", {}});
    return;
  }
  pending p{encode_command(args), clock::now() + timeout, std::move(done)};
  // Posted, never dispatched: a callback that issues the next command never
  // re-enters the reply loop that called it.
  asio::post(strand_, [self = shared_from_this(), p = std::move(p)]() mutable {
    self->enqueue(std::move(p));
  });
}

void redis_connection::stop() {
  stopped_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->fail_all(log_failure::connect, "stopped");
  });
}

void redis_connection::enqueue(pending p) {
  if (stopped_) {
    p.done({log_failure::connect, "stopped", {}});
    return;
  }
  unsent_.push_back(std::move(p));
  arm_deadline();
  if (phase_ == phase::idle)
    do_connect();
  else
    do_write();
}

void redis_connection::do_connect() {
  phase_ = phase::connecting;
  if (reader_)
    redisReaderFree(reader_);
  reader_ = make_bounded_reader();
  connect_timer_.expires_after(connect_timeout_);
  connect_timer_.async_wait(
      [self = shared_from_this(), e = epoch_](const error_code& ec) {
        self->on_connect_timeout(e, ec);
      });
  // Asio's resolver runs getaddrinfo off the I/O thread (hiredis's would
  // block it).
  resolver_.async_resolve(
      ep_.host, std::to_string(ep_.port),
      [self = shared_from_this(), e = epoch_](const error_code& ec,
                                              tcp::resolver::results_type r) {
        self->on_resolve(e, ec, r);
      });
}

void redis_connection::on_resolve(uint64_t epoch, const error_code& ec,
                                  const tcp::resolver::results_type& r) {
  if (epoch != epoch_)
    return;
  if (ec)
    return fail_all(log_failure::connect,
                    "resolve " + ep_.host + ": " + ec.message());
  asio::async_connect(
      socket_, r,
      [self = shared_from_this(), epoch](const error_code& ec, const auto&) {
        self->on_connect(epoch, ec);
      });
}

void redis_connection::on_connect(uint64_t epoch, const error_code& ec) {
  if (epoch != epoch_)
    return;
  if (ec)
    return fail_all(log_failure::connect,
                    "connect " + describe() + ": " + ec.message());
  set_socket_options();
  // AUTH and SELECT go first and alone: a command must never run
  // unauthenticated or in the wrong database.
  std::vector<pending> hello;
  if (!ep_.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!ep_.user.empty())
      auth.push_back(ep_.user);
    auth.push_back(ep_.password);
    hello.push_back({encode_command(auth), {}, {}, kind::auth});
  }
  if (ep_.db != 0)
    hello.push_back({encode_command({"SELECT", std::to_string(ep_.db)}),
                     {},
                     {},
                     kind::select});
  for (auto it = hello.rbegin(); it != hello.rend(); ++it)
    unsent_.push_front(std::move(*it));
  phase_ = hello.empty() ? phase::ready : phase::handshake;
  if (phase_ == phase::ready)
    connect_timer_.cancel();
  do_read();
  do_write();
}

void redis_connection::on_connect_timeout(uint64_t epoch,
                                          const error_code& ec) {
  if (ec || epoch != epoch_ || phase_ == phase::ready || phase_ == phase::idle)
    return;
  fail_all(log_failure::connect, "connect " + describe() + ": no answer in "
                                     + describe_ms(connect_timeout_));
}

void redis_connection::set_socket_options() {
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  socket_.set_option(asio::socket_base::keep_alive(true), ignored);
  // Probes after 5 s idle, every 2 s, 3 unanswered: a vanished peer (no
  // FIN) breaks the connection within ~11 s even inside a blocking read.
  int fd = socket_.native_handle();
  int idle = 5, interval = 2, count = 3;
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

void redis_connection::do_write() {
  if (writing_ || phase_ == phase::idle || phase_ == phase::connecting)
    return;
  write_buf_.clear();
  // During the handshake only AUTH/SELECT leave; the rest waits for them.
  while (!unsent_.empty()
         && (phase_ == phase::ready || unsent_.front().what != kind::user)) {
    write_buf_ += unsent_.front().bytes;
    unsent_.front().bytes = std::string{};
    in_flight_.push_back(std::move(unsent_.front()));
    unsent_.pop_front();
  }
  if (write_buf_.empty())
    return;
  writing_ = true;
  asio::async_write(
      socket_, asio::buffer(write_buf_),
      [self = shared_from_this(), e = epoch_](const error_code& ec, size_t) {
        self->on_write(e, ec);
      });
}

void redis_connection::on_write(uint64_t epoch, const error_code& ec) {
  if (epoch != epoch_)
    return;
  writing_ = false;
  if (ec)
    return fail_all(log_failure::connect, "write: " + ec.message());
  do_write();
}

void redis_connection::do_read() {
  socket_.async_read_some(
      asio::buffer(read_buf_),
      [self = shared_from_this(), e = epoch_](const error_code& ec, size_t n) {
        self->on_read(e, ec, n);
      });
}

void redis_connection::on_read(uint64_t epoch, const error_code& ec, size_t n) {
  if (epoch != epoch_)
    return;
  if (ec)
    return fail_all(log_failure::connect, ec == asio::error::eof
                                              ? "Redis closed the connection"
                                              : "read: " + ec.message());
  if (redisReaderFeed(reader_, read_buf_.data(), n) != REDIS_OK)
    return fail_all(log_failure::protocol, "reply parser failed");
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK)
      return fail_all(log_failure::protocol,
                      std::string{"bad reply: "} + reader_->errstr);
    if (!raw)
      break;
    auto v = to_redis_value(static_cast<redisReply*>(raw));
    freeReplyObject(raw);
    // A callback may stop us; the epoch tells.
    if (!on_reply(std::move(v)) || epoch != epoch_)
      return;
  }
  do_read();
}

bool redis_connection::on_reply(redis_value v) {
  if (in_flight_.empty()) {
    fail_all(log_failure::protocol, "a reply nobody asked for");
    return false;
  }
  auto p = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (p.what != kind::user) {
    if (v.kind == redis_value::type::error) {
      fail_all(log_failure::connect,
               (p.what == kind::auth ? "AUTH: " : "SELECT: ")
                   + redact(std::move(v.str)));
      return false;
    }
    bool more = std::any_of(in_flight_.begin(), in_flight_.end(), [](auto& q) {
      return q.what != kind::user;
    });
    if (!more) {
      phase_ = phase::ready;
      connect_timer_.cancel();
      do_write();
    }
    return true;
  }
  arm_deadline();
  p.done({log_failure::none, {}, std::move(v)});
  return true;
}

void redis_connection::arm_deadline() {
  auto next = clock::time_point::max();
  for (auto* q : {&in_flight_, &unsent_})
    for (auto& p : *q)
      if (p.what == kind::user && p.deadline < next)
        next = p.deadline;
  if (next == armed_for_)
    return;
  armed_for_ = next;
  if (next == clock::time_point::max()) {
    deadline_timer_.cancel();
    return;
  }
  deadline_timer_.expires_at(next);
  deadline_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    self->on_deadline(ec);
  });
}

void redis_connection::on_deadline(const error_code& ec) {
  if (ec == asio::error::operation_aborted)
    return;
  // A wait that completed just before a re-arm lands here early: re-check.
  armed_for_ = clock::time_point::max();
  auto now = clock::now();
  for (auto* q : {&in_flight_, &unsent_})
    for (auto& p : *q)
      if (p.what == kind::user && p.deadline <= now)
        return fail_all(log_failure::timeout, "no reply in time");
  arm_deadline();
}

void redis_connection::fail_all(log_failure f, std::string error) {
  ++epoch_;
  phase_ = phase::idle;
  writing_ = false;
  error_code ignored;
  resolver_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  connect_timer_.cancel();
  armed_for_ = clock::time_point::max();
  deadline_timer_.cancel();
  // Callbacks run after our state is consistent, from local copies: one may
  // issue the next command (posted, so it starts a fresh connection).
  auto failed = std::move(in_flight_);
  in_flight_.clear();
  for (auto& p : unsent_)
    failed.push_back(std::move(p));
  unsent_.clear();
  for (auto& p : failed)
    if (p.what == kind::user)
      p.done({f, error, {}});
}

std::string redis_connection::redact(std::string text) const {
  // Redis's AUTH errors do not quote the password; make sure of it.
  if (ep_.password.empty())
    return text;
  for (auto pos = text.find(ep_.password); pos != std::string::npos;
       pos = text.find(ep_.password, pos + 3))
    text.replace(pos, ep_.password.size(), "***");
  return text;
}

} // namespace btcstream

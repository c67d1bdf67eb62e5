#include "http/sse_session.hpp"

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/update.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <stdexcept>

namespace btcstream {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view crlf = "\r\n";
constexpr std::string_view last_chunk = "0\r\n\r\n";

/// The buffers of the batch not yet written, as a buffer sequence that
/// views `bufs_` instead of copying it (this runs for every write).
struct unsent {
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const asio::const_buffer* begin() const { return first; }
  const asio::const_buffer* end() const { return last; }
};

/// The sink the connection actor writes to. A weak pointer, so the actor
/// never keeps a socket alive (chat-multi's broadcast).
class session_sink final : public frame_sink {
public:
  explicit session_sink(std::weak_ptr<sse_session> s)
      : session_(std::move(s)) {}

  void deliver(frame_ptr f, int64_t stored_ns) override {
    if (auto s = session_.lock())
      s->post_live(std::move(f), stored_ns);
  }

  void replay(std::vector<frame_ptr> frames) override {
    if (auto s = session_.lock())
      s->post_replay(std::move(frames));
  }

  void close(end_cause why) override {
    if (auto s = session_.lock())
      s->post_close(why);
  }

private:
  std::weak_ptr<sse_session> session_;
};

/// Writes "<hex size>\r\n" to `buf`; returns its length. `to_chars`, not
/// `snprintf`: this runs for every write.
size_t chunk_size_line(std::array<char, 24>& buf, size_t size) {
  auto* p
      = std::to_chars(buf.data(), buf.data() + buf.size() - 2, size, 16).ptr;
  *p++ = '\r';
  *p++ = '\n';
  return static_cast<size_t>(p - buf.data());
}

sse_session::strand strand_of(asio::ip::tcp::socket& s) {
  auto ex = s.get_executor();
  if (auto* st = ex.target<sse_session::strand>())
    return *st;
  throw std::invalid_argument("sse_session needs a socket on a strand");
}

/// How a failed socket operation ends the stream: `timed_out` is the
/// kernel's TCP_USER_TIMEOUT, i.e. --stall-timeout without progress.
session_state ended_by(const error_code& ec) {
  return ec == asio::error::timed_out ? session_state::stalled
                                      : session_state::closed;
}

} // namespace

sse_session::sse_session(asio::ip::tcp::socket socket,
                         std::shared_ptr<server_context> ctx, bool chunked)
    : socket_(std::move(socket)),
      strand_(strand_of(socket_)),
      stall_timer_(strand_),
      ctx_(std::move(ctx)),
      chunked_(chunked) {
  ctx_->stats->sse_sessions.fetch_add(1, std::memory_order_relaxed);
}

sse_session::~sse_session() {
  ctx_->sse_clients.fetch_sub(1, std::memory_order_relaxed);
  ctx_->stats->sse_sessions.fetch_sub(1, std::memory_order_relaxed);
}

void sse_session::start(std::string header, std::string retry,
                        resume_point from) {
  error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(asio::ip::tcp::no_delay{true}, ec);
  bound_kernel_buffers();
  header_ = std::move(header);
  ctx_->stats->sse_connections.fetch_add(1, std::memory_order_relaxed);
  // Frames the actor delivers are posted, so they queue behind `retry`.
  events_ = ctx_->streams->open(
      std::move(from), std::make_shared<session_sink>(weak_from_this()));
  enqueue(std::make_shared<const std::string>(std::move(retry)), false, 0);
  if (!finished_)
    do_read();
}

// A client that stops reading must be noticed and must not hold much kernel
// memory. Left alone, Linux grows a socket's send buffer up to tcp_wmem's
// maximum (4 MiB) and a stalled client at one small event a second never
// fills it, so writes never block and neither --client-queue nor the stall
// timer would ever see it. So: a fixed send buffer (no autotuning), and
// TCP_USER_TIMEOUT = --stall-timeout, with which the kernel ends a connection
// whose data stays unacknowledged or unsent (zero window) that long; the
// pending read then fails with `timed_out`.
void sse_session::bound_kernel_buffers() {
  error_code ec;
  socket_.set_option(asio::socket_base::send_buffer_size(kernel_send_buffer),
                     ec);
  auto ms = std::min<std::chrono::milliseconds::rep>(
      ctx_->opts.stall_timeout.count(), std::numeric_limits<int>::max());
  int timeout
      = static_cast<int>(std::max<std::chrono::milliseconds::rep>(ms, 1));
  ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout,
               sizeof timeout);
}

void sse_session::post_live(frame_ptr f, int64_t stored_ns) {
  asio::post(strand_, [self = shared_from_this(), f = std::move(f),
                       stored_ns]() mutable {
    self->enqueue(std::move(f), true, stored_ns);
  });
}

void sse_session::post_replay(std::vector<frame_ptr> fs) {
  asio::post(strand_,
             [self = shared_from_this(), fs = std::move(fs)]() mutable {
               if (self->finished_ || self->closing_)
                 return;
               for (auto& f : fs)
                 self->queue_.push_back(item{std::move(f), false, 0});
               self->flush();
             });
}

void sse_session::post_close(end_cause why) {
  asio::post(strand_, [self = shared_from_this(), why] {
    if (!self->closing_)
      self->close_cause_ = why;
    self->closing_ = true;
    self->flush();
  });
}

void sse_session::enqueue(frame_ptr f, bool counted, int64_t stored_ns) {
  if (finished_ || closing_)
    return;
  if (counted) {
    counted_bytes_ += f->size();
    if (counted_bytes_ > ctx_->opts.client_queue) {
      finish(session_state::slow);
      return;
    }
  }
  size_t written = 0;
  if (counted && idle() && write_alone(*f, stored_ns, written)) {
    counted_bytes_ -= f->size();
    return;
  }
  queue_.push_back(item{std::move(f), counted, stored_ns});
  if (written > 0) { // the rest goes out as a batch of this one frame
    next_batch();
    consume(written);
  }
  flush();
}

bool sse_session::idle() const {
  return queue_.empty() && bufs_.empty() && !waiting_ && header_.empty();
}

// The common case, a live frame to a client with nothing pending, written
// from the stack: queue_, batch_ and bufs_ live on the heap, and at 10,000
// clients each of them is a cache miss per client per event. Returns true
// when nothing is left to do (the frame went out whole, or the stream
// ended); otherwise `written` bytes of it went out.
bool sse_session::write_alone(const std::string& frame, int64_t stored_ns,
                              size_t& written) {
  std::array<char, 24> head{};
  std::array<asio::const_buffer, 3> out;
  size_t n_bufs = 0;
  if (chunked_)
    out[n_bufs++]
        = asio::buffer(head.data(), chunk_size_line(head, frame.size()));
  out[n_bufs++] = asio::buffer(frame);
  if (chunked_)
    out[n_bufs++] = asio::buffer(crlf.data(), crlf.size());
  error_code ec;
  auto n = socket_.write_some(unsent{out.data(), out.data() + n_bufs}, ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again)
    return false;
  if (ec) {
    finish(ended_by(ec));
    return true;
  }
  auto now_ns = steady_now_ns();
  last_progress_
      = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns));
  if (n < asio::buffer_size(out)) {
    written = n;
    return false;
  }
  if (stored_ns != 0)
    ctx_->stats->event_delivery.observe(static_cast<double>(now_ns - stored_ns)
                                        / 1e9);
  return true;
}

// Writes without blocking as long as the socket takes bytes; waits for
// writability otherwise. One batch in flight, always.
void sse_session::flush() {
  if (finished_ || waiting_)
    return;
  for (;;) {
    if (next_buf_ == bufs_.size() && !next_batch()) {
      if (closing_ && terminated_) {
        error_code ec;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
        finish(session_state::closed);
      }
      return;
    }
    error_code ec;
    auto n = socket_.write_some(
        unsent{bufs_.data() + next_buf_, bufs_.data() + bufs_.size()}, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      wait_writable();
      return;
    }
    if (ec) {
      finish(ended_by(ec));
      return;
    }
    last_progress_ = std::chrono::steady_clock::now();
    consume(n);
  }
}

// Moves every queued frame into one write (one chunk for HTTP/1.1).
bool sse_session::next_batch() {
  // The batch in flight is written: live frames are delivered now.
  int64_t now_ns = batch_.empty() ? 0 : steady_now_ns();
  for (auto& i : batch_) {
    if (i.counted)
      counted_bytes_ -= i.frame->size();
    if (i.stored_ns != 0)
      ctx_->stats->event_delivery.observe(
          static_cast<double>(now_ns - i.stored_ns) / 1e9);
  }
  batch_.clear();
  bufs_.clear();
  next_buf_ = 0;
  if (header_in_batch_) {
    header_in_batch_ = false;
    header_.clear();
    header_.shrink_to_fit();
  }
  if (!header_.empty()) {
    // The header goes out with the first batch, then never again.
    bufs_.emplace_back(asio::buffer(header_));
    header_in_batch_ = true;
  }
  if (queue_.empty()) {
    if (closing_ && !terminated_) {
      terminated_ = true;
      if (chunked_)
        bufs_.emplace_back(asio::buffer(last_chunk.data(), last_chunk.size()));
    }
    return !bufs_.empty();
  }
  size_t total = 0;
  for (auto& i : queue_)
    total += i.frame->size();
  if (chunked_)
    bufs_.emplace_back(
        asio::buffer(chunk_head_.data(), chunk_size_line(chunk_head_, total)));
  batch_.reserve(queue_.size());
  for (auto& i : queue_) {
    bufs_.emplace_back(asio::buffer(*i.frame));
    batch_.push_back(std::move(i));
  }
  queue_.clear();
  if (chunked_)
    bufs_.emplace_back(asio::buffer(crlf.data(), crlf.size()));
  return true;
}

void sse_session::consume(size_t n) {
  while (n > 0 && next_buf_ < bufs_.size()) {
    auto& b = bufs_[next_buf_];
    if (n >= b.size()) {
      n -= b.size();
      ++next_buf_;
    } else {
      b += n;
      n = 0;
    }
  }
}

void sse_session::wait_writable() {
  waiting_ = true;
  if (!timer_armed_) {
    last_progress_ = std::chrono::steady_clock::now();
    timer_armed_ = true;
    stall_timer_.expires_at(last_progress_ + ctx_->opts.stall_timeout);
    stall_timer_.async_wait([self = shared_from_this()](error_code ec) {
      self->on_stall_timer(ec);
    });
  }
  socket_.async_wait(asio::ip::tcp::socket::wait_write,
                     [self = shared_from_this()](error_code ec) {
                       self->on_writable(ec);
                     });
}

void sse_session::on_writable(error_code ec) {
  waiting_ = false;
  if (finished_)
    return;
  if (ec) {
    finish(ended_by(ec));
    return;
  }
  flush();
}

void sse_session::on_stall_timer(error_code ec) {
  timer_armed_ = false;
  if (ec || finished_ || !waiting_)
    return;
  auto deadline = last_progress_ + ctx_->opts.stall_timeout;
  if (std::chrono::steady_clock::now() >= deadline) {
    finish(session_state::stalled);
    return;
  }
  timer_armed_ = true;
  stall_timer_.expires_at(deadline);
  stall_timer_.async_wait([self = shared_from_this()](error_code ec) {
    self->on_stall_timer(ec);
  });
}

// SSE clients send nothing after the request; a pending read notices at once
// when they go away, instead of at the next write.
void sse_session::do_read() {
  socket_.async_read_some(asio::buffer(read_buf_),
                          [self = shared_from_this()](error_code ec, size_t n) {
                            self->on_read(ec, n);
                          });
}

void sse_session::on_read(error_code ec, size_t) {
  if (finished_)
    return;
  if (ec) {
    finish(ended_by(ec));
    return;
  }
  do_read();
}

void sse_session::finish(session_state s) {
  if (finished_)
    return;
  finished_ = true;
  auto reason = disconnect_reason::client_closed;
  if (s != session_state::closed)
    reason = disconnect_reason::slow_consumer;
  else if (close_cause_ == end_cause::shutdown)
    reason = disconnect_reason::shutdown;
  else if (close_cause_ == end_cause::error)
    reason = disconnect_reason::error;
  else if (close_cause_ == end_cause::max_age)
    reason = disconnect_reason::max_age;
  ctx_->stats->count_disconnect(reason);
  if (s != session_state::closed)
    log(log_level::warn,
        std::string{"sse session drops a client: "} + to_string(s));
  else
    log(log_level::debug,
        std::string{"sse session ends: "} + to_string(reason));
  error_code ec;
  stall_timer_.cancel();
  socket_.close(ec);
  queue_.clear();
  if (events_) {
    events_->on_state(s);
    events_.reset();
  }
}

} // namespace btcstream

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
#include <cassert>
#include <cerrno>
#include <limits>
#include <stdexcept>

namespace btcstream {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::string_view last_chunk = "0\r\n\r\n";

/// The buffers of the batch not yet written, as a buffer sequence that
/// views `bufs_` instead of copying it (this runs for every write).
struct unsent {
  const asio::const_buffer* first;
  const asio::const_buffer* last;
  const asio::const_buffer* begin() const { return first; }
  const asio::const_buffer* end() const { return last; }
};

/// What one `send_bytes` did.
struct sent {
  size_t written = 0; ///< bytes the socket took
  bool whole = false; ///< all of them: the frame is out
};

/// Writes `bytes` (what a stream writes of a frame: `wire`) with one
/// non-blocking `send`; `ec` = would_block when the socket took nothing. A
/// plain system call on the descriptor: the connection actor's thread calls
/// this too, and must not touch the Asio socket object.
sent send_bytes(int fd, std::string_view bytes, error_code& ec) {
  for (;;) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      ec = {};
      return {static_cast<size_t>(n), static_cast<size_t>(n) == bytes.size()};
    }
    if (errno == EINTR)
      continue;
    ec = errno == EAGAIN || errno == EWOULDBLOCK
             ? error_code{asio::error::would_block}
             : error_code{errno, boost::system::system_category()};
    return {};
  }
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
    : chunked_(chunked),
      delivery_(&ctx->stats->event_delivery),
      ctx_(std::move(ctx)),
      socket_(std::move(socket)),
      strand_(strand_of(socket_)),
      stall_timer_(strand_) {
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
  fd_ = socket_.native_handle();
  header_ = std::move(header);
  ctx_->stats->sse_connections.fetch_add(1, std::memory_order_relaxed);
  // Frames the actor delivers are posted, so they queue behind `retry`.
  events_ = ctx_->streams->open(std::move(from), shared_from_this());
  enqueue(make_frame(retry), false, 0);
  if (!finished_)
    do_read();
  settle(0);
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

// Nearly every live frame reaches a client with nothing pending. Then the
// caller writes it at once: a post to the strand per client and event was
// the largest user-space cost of the fan-out (docs/performance.md).
void sse_session::deliver(const frame_ptr& f, int64_t stored_ns) {
  if (gate_.try_write()) {
    error_code ec;
    auto out = send_bytes(fd_, wire(*f), ec);
    if (out.whole) {
      observe_delivery(stored_ns, steady_now_ns());
      if (gate_.done_writing())
        post_deferred_close();
      return;
    }
    hand_over(f, stored_ns, out.written, ec);
    return;
  }
  post_counted([f, stored_ns](sse_session& s) mutable {
    s.enqueue(std::move(f), true, stored_ns);
  });
}

void sse_session::replay(std::vector<frame_ptr> fs) {
  post_counted([fs = std::move(fs)](sse_session& s) mutable {
    if (s.finished_ || s.closing_)
      return;
    for (auto& f : fs)
      s.queue_.push_back(item{std::move(f), false, 0});
    s.flush();
  });
}

void sse_session::close(end_cause why) {
  post_counted([why](sse_session& s) {
    if (!s.closing_)
      s.close_cause_ = why;
    s.closing_ = true;
    s.flush();
  });
}

// The caller's posts keep the gate shut until they have run, so its direct
// writes never overtake what it queued before.
template<class Handler>
void sse_session::post_counted(Handler h) {
  gate_.posting();
  asio::post(strand_, [self = shared_from_this(), h = std::move(h)]() mutable {
    h(*self);
    self->settle(1);
  });
}

// The socket took only part of a direct write (or none, or failed): the
// strand takes the socket back, with the rest of this frame first.
void sse_session::hand_over(frame_ptr f, int64_t stored_ns, size_t written,
                            error_code ec) {
  if (ec == asio::error::timed_out) // before the gate opens: see on_read
    caller_timed_out_.store(true, std::memory_order_relaxed);
  if (gate_.hand_over())
    post_deferred_close();
  asio::post(strand_, [self = shared_from_this(), f = std::move(f), stored_ns,
                       written, ec]() mutable {
    if (ec && ec != asio::error::would_block)
      self->write_failed(ec);
    else
      self->enqueue(std::move(f), true, stored_ns, written);
    self->settle(1);
  });
}

// On the strand, at the end of every handler that may have changed what is
// pending: the caller may write again once nothing is.
void sse_session::settle(uint64_t posts_done) {
  gate_.settle(posts_done, finished_ || closing_ || broken_ || !idle());
}

// A write found the connection gone. When the kernel's stall timeout ended
// it, the write may have lost the `timed_out` to the pending read, whose
// handler then still has to run: so the read, which completes at once on
// a dead socket, says why the stream ended (on_read). Other errors end it
// here.
void sse_session::write_failed(error_code ec) {
  if (ec == asio::error::broken_pipe || ec == asio::error::connection_reset) {
    broken_ = true;
    return;
  }
  finish(ended_by(ec));
}

// finish() met the caller in a direct write: the caller posts this when it
// is done, so the descriptor is not closed (and reused) under it.
void sse_session::post_deferred_close() {
  asio::post(strand_, [self = shared_from_this()] {
    error_code ec;
    self->socket_.close(ec);
  });
}

void sse_session::observe_delivery(int64_t stored_ns, int64_t now_ns) {
  if (stored_ns != 0)
    delivery_->observe(static_cast<double>(now_ns - stored_ns) / 1e9);
}

// `written`: bytes of `f` the caller wrote before it handed the frame over
// (the session was idle then, so `f` is all that is pending).
void sse_session::enqueue(frame_ptr f, bool counted, int64_t stored_ns,
                          size_t written) {
  if (finished_ || closing_ || broken_)
    return;
  if (counted) {
    counted_bytes_ += f->size();
    if (counted_bytes_ > ctx_->opts.client_queue) {
      finish(session_state::slow);
      return;
    }
  }
  if (written > 0) {
    assert(idle());
    last_progress_ = std::chrono::steady_clock::now();
  } else if (counted && idle() && write_alone(wire(*f), stored_ns, written)) {
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
bool sse_session::write_alone(std::string_view bytes, int64_t stored_ns,
                              size_t& written) {
  error_code ec;
  auto out = send_bytes(fd_, bytes, ec);
  if (ec == asio::error::would_block)
    return false;
  if (ec) {
    write_failed(ec);
    return true;
  }
  auto now_ns = steady_now_ns();
  last_progress_
      = std::chrono::steady_clock::time_point(std::chrono::nanoseconds(now_ns));
  if (!out.whole) {
    written = out.written;
    return false;
  }
  observe_delivery(stored_ns, now_ns);
  return true;
}

// Writes without blocking as long as the socket takes bytes; waits for
// writability otherwise. One batch in flight, always.
void sse_session::flush() {
  if (finished_ || waiting_ || broken_)
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
      write_failed(ec);
      return;
    }
    last_progress_ = std::chrono::steady_clock::now();
    consume(n);
  }
}

// Moves every queued frame into one write (for HTTP/1.1, each its own chunk:
// the frames are stored that way).
bool sse_session::next_batch() {
  // The batch in flight is written: live frames are delivered now.
  int64_t now_ns = batch_.empty() ? 0 : steady_now_ns();
  for (auto& i : batch_) {
    if (i.counted)
      counted_bytes_ -= i.frame->size();
    observe_delivery(i.stored_ns, now_ns);
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
  batch_.reserve(queue_.size());
  for (auto& i : queue_) {
    auto bytes = wire(*i.frame);
    bufs_.emplace_back(asio::buffer(bytes.data(), bytes.size()));
    batch_.push_back(std::move(i));
  }
  queue_.clear();
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
  if (ec)
    finish(ended_by(ec));
  else
    flush();
  settle(0);
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

// The kernel reports a connection's error to one system call only. When
// TCP_USER_TIMEOUT ends a stalled stream, the caller's direct write may be
// the one that gets `timed_out`, and this read then sees only the end of
// the stream, and may run before the caller's hand-over: without asking
// the caller, the stream would end as `closed` (client_closed) instead of
// `stalled` (slow_consumer). So a read that fails otherwise waits for the
// caller to leave its write, then takes the caller's finding into account.
// (A write that gets only `broken_pipe` leaves the verdict to this read:
// write_failed.)
void sse_session::on_read(error_code ec, size_t) {
  if (finished_)
    return;
  if (ec) {
    if (ec != asio::error::timed_out && gate_.caller_writing()) {
      asio::post(strand_, [self = shared_from_this(), ec] {
        self->on_read(ec, 0);
      });
      return;
    }
    auto state = ended_by(ec);
    if (caller_timed_out_.load(std::memory_order_relaxed))
      state = session_state::stalled;
    finish(state);
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
  stall_timer_.cancel();
  // The caller never writes again; if it is writing now, it closes later.
  if (gate_.finishing()) {
    error_code ec;
    socket_.close(ec);
  }
  queue_.clear();
  if (events_) {
    events_->on_state(s);
    events_.reset();
  }
}

} // namespace btcstream

#pragma once

#include "core/frame_sink.hpp"
#include "core/metrics.hpp"
#include "core/query.hpp"
#include "core/write_gate.hpp"
#include "http/server_context.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace btcstream {

/// One SSE client's socket, after the HTTP session handed it over. Owns the
/// queue of unsent frames, enforces --client-queue and --stall-timeout,
/// coalesces queued frames into one write, and reports only state changes to
/// its connection actor. Every member runs on the socket's strand; the
/// frame sink's side (`deliver`, `replay`, `close`) may be called from any
/// thread, one caller at a time (the session's connection actor, which
/// holds the session weakly, so that it never keeps a socket alive).
///
/// The one exception is the common case of a live frame to a client with
/// nothing pending: the caller writes it itself (`deliver`), without a
/// hand-off to the strand, when `gate_` lets it (core/write_gate.hpp).
class sse_session final : public frame_sink,
                          public std::enable_shared_from_this<sse_session> {
public:
  /// The executor of every socket the listener accepts.
  using strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  /// Takes a slot already counted in `ctx->sse_clients`; gives it back when
  /// destroyed. Throws std::invalid_argument unless the socket runs on a
  /// `strand`.
  sse_session(boost::asio::ip::tcp::socket socket,
              std::shared_ptr<server_context> ctx, bool chunked);
  ~sse_session() override;

  sse_session(const sse_session&) = delete;
  sse_session& operator=(const sse_session&) = delete;

  /// Writes `head` (the response header and the `retry:` field) at once and
  /// opens the stream from `from`. Call on the socket's strand.
  void start(std::string header, std::string retry, resume_point from);

  /// The frame sink, for one caller at a time. `deliver` writes the frame
  /// at once when the session is idle; the rest is posted to the strand.
  void deliver(const frame_ptr& f, int64_t stored_ns) override;
  void replay(std::vector<frame_ptr> fs) override;
  void close(end_cause why) override;

private:
  struct item {
    frame_ptr frame;
    bool counted;      // against --client-queue
    int64_t stored_ns; // live frames: when stored, for the delivery time
  };

  /// The kernel's send buffer of a stream (SO_SNDBUF; Linux doubles it
  /// for its bookkeeping): far above what a live client has in flight,
  /// small enough that a stalled one blocks writes soon.
  static constexpr int kernel_send_buffer = 32 * 1024;

  void bound_kernel_buffers();
  template<class Handler>
  void post_counted(Handler h);
  void hand_over(frame_ptr f, int64_t stored_ns, size_t written,
                 boost::system::error_code ec);
  void settle(uint64_t posts_done);
  void write_failed(boost::system::error_code ec);
  void post_deferred_close();
  void observe_delivery(int64_t stored_ns, int64_t now_ns);
  void enqueue(frame_ptr f, bool counted, int64_t stored_ns,
               size_t written = 0);
  bool idle() const;
  bool write_alone(std::string_view bytes, int64_t stored_ns, size_t& written);
  /// What this stream writes of `f`: its chunk, or for HTTP/1.0 its text.
  std::string_view wire(const frame& f) const {
    return chunked_ ? f.chunk() : f.text();
  }
  void flush();
  bool next_batch();
  void consume(size_t n);
  void wait_writable();
  void on_writable(boost::system::error_code ec);
  void on_stall_timer(boost::system::error_code ec);
  void do_read();
  void on_read(boost::system::error_code ec, size_t n);
  void finish(session_state s);

  // What a direct write (`deliver`) reads, first and together, right after
  // the two bases (the sink's vtable pointer, enable_shared_from_this) and
  // the control block that make_shared puts before them, which the caller's
  // weak_ptr::lock touches: one or two cache lines, cold by the client's
  // next event (docs/performance.md, "Cold lines").
  int fd_ = -1; // socket_'s, for the caller's direct writes
  bool chunked_;
  write_gate gate_;
  histogram* delivery_; // ctx_->stats->event_delivery, kept alive by ctx_
  std::shared_ptr<server_context> ctx_;
  boost::asio::ip::tcp::socket socket_;
  strand strand_; // the socket's, typed: posts skip the type-erased executor
  boost::asio::steady_timer stall_timer_;
  std::string header_; // written once, before the first chunk
  bool header_in_batch_ = false;
  std::deque<item> queue_;
  uint64_t counted_bytes_ = 0; // unsent counted bytes, queued or in batch_
  std::vector<item> batch_;    // the write in progress
  std::vector<boost::asio::const_buffer> bufs_;
  size_t next_buf_ = 0; // first buffer of bufs_ not yet fully written
  bool closing_ = false;
  end_cause close_cause_ = end_cause::done; // why the actor side closed
  bool terminated_ = false;                 // the final chunk has been queued
  bool finished_ = false;
  bool waiting_ = false; // blocked until the socket is writable
  bool broken_ = false;  // a write found the connection gone (write_failed)
  // The caller's direct write met the kernel's stall timeout (see on_read).
  std::atomic<bool> caller_timed_out_{false};
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point last_progress_;
  std::array<char, 256> read_buf_{};
  std::shared_ptr<session_events> events_;
};

} // namespace btcstream

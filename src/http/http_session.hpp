#pragma once

#include "core/query.hpp"
#include "http/responses.hpp"
#include "http/router.hpp"
#include "http/server_context.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory>
#include <optional>

namespace btcstream {

/// One HTTP connection: reads requests (bounded head and body, timeouts),
/// answers static files and errors with keep-alive, and hands the socket to
/// an `sse_session` for `/stream`.
class http_session : public std::enable_shared_from_this<http_session> {
public:
  /// @param admin whether the connection came to the admin listener, which
  /// serves only `admin_route`s.
  http_session(boost::asio::ip::tcp::socket&& socket,
               std::shared_ptr<server_context> ctx, bool admin = false);

  ~http_session();

  /// Starts reading on the socket's strand.
  void run();

  /// Answers the first request with 503 and closes: too many connections.
  void reject_busy();

private:
  void do_read();
  void read_first_bytes();
  void on_first_bytes(boost::beast::error_code ec, size_t n);
  /// Drops CR and LF bytes before the next request line.
  void skip_empty_lines();
  void read_head();
  void on_head(boost::beast::error_code ec, size_t n);
  void on_read(boost::beast::error_code ec, size_t n);
  /// The reason a request must be refused once its head is read, before its
  /// body (a Transfer-Encoding, too many fields), or none.
  std::optional<string_response> refuse_framing();
  void handle();
  void serve_stream(const target& t, bool head_only);
  void serve_file(const std::filesystem::path& file, bool head_only);
  void respond(string_response res);

  /// A callback for the core's answer (called on any thread) that posts the
  /// response `make(options, answer)` back onto this session's strand.
  template<class T, class Make>
  auto reply_later(Make make) {
    return [self = shared_from_this(), make = std::move(make)](T answer) {
      auto ex = self->stream_.get_executor();
      boost::asio::post(ex, [self, make, answer = std::move(answer)]() mutable {
        self->respond(make(self->ctx_->opts, answer));
      });
    };
  }
  void on_write(bool close, boost::beast::error_code ec, size_t n);

  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<server_context> ctx_;
  bool admin_ = false;
  bool first_request_ = true;
  route_label label_ = route_label::unknown; // of the request being answered
  bool busy_ = false; // over --max-http-connections: answer 503 and close
  // A body may follow the request being answered (Expect: 100-continue).
  bool close_after_answer_ = false;
  std::shared_ptr<string_response> pending_; // alive while being written
};

} // namespace btcstream

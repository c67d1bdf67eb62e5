#include "http/http_session.hpp"

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/query.hpp"
#include "core/sse.hpp"
#include "http/rest.hpp"
#include "http/router.hpp"
#include "http/sse_session.hpp"
#include "http/static_files.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <iterator>
#include <random>
#include <sstream>

namespace btcstream {

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace {

/// Per-thread randomness for the `retry:` jitter (not actor state).
random_source& thread_random() {
  thread_local seeded_random rng{std::random_device{}()};
  return rng;
}

} // namespace

http_session::http_session(asio::ip::tcp::socket&& socket,
                           std::shared_ptr<server_context> ctx, bool admin)
    : stream_(std::move(socket)), ctx_(std::move(ctx)), admin_(admin) {
  ctx_->stats->http_sessions.fetch_add(1, std::memory_order_relaxed);
  if (admin_)
    ctx_->admin_sessions.fetch_add(1, std::memory_order_relaxed);
}

http_session::~http_session() {
  ctx_->stats->http_sessions.fetch_sub(1, std::memory_order_relaxed);
  if (admin_)
    ctx_->admin_sessions.fetch_sub(1, std::memory_order_relaxed);
}

void http_session::reject_busy() {
  // Read the request before answering: closing with unread bytes would
  // reset the connection and the client might never see the 503.
  busy_ = true;
  run();
}

void http_session::run() {
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->do_read();
  });
}

void http_session::do_read() {
  label_ = route_label::unknown;
  parser_.emplace();
  parser_->header_limit(ctx_->opts.max_head_bytes);
  parser_->body_limit(ctx_->opts.max_body_bytes);
  if (!first_request_) {
    skip_empty_lines();
    if (buffer_.size() == 0) {
      // Idle between requests: wait for the next one's first bytes under
      // the idle timeout; its head then gets the head timeout like the
      // first, so a head trickled on a kept-alive connection is cut as soon.
      stream_.expires_after(ctx_->opts.idle_timeout);
      read_first_bytes();
      return;
    }
  }
  read_head();
}

void http_session::read_first_bytes() {
  stream_.async_read_some(
      buffer_.prepare(4096),
      [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->on_first_bytes(ec, n);
      });
}

void http_session::on_first_bytes(beast::error_code ec, size_t n) {
  if (ec) {
    on_read(ec, 0);
    return;
  }
  buffer_.commit(n);
  skip_empty_lines();
  if (buffer_.size() == 0) {
    read_first_bytes(); // under the same idle deadline: blank lines buy none
    return;
  }
  read_head();
}

void http_session::skip_empty_lines() {
  // RFC 9112 2.2: empty lines before a request line are ignored (some
  // clients send a CRLF after a POST body).
  auto bytes = static_cast<const char*>(buffer_.data().data());
  size_t n = 0;
  while (n < buffer_.size() && (bytes[n] == '\r' || bytes[n] == '\n'))
    ++n;
  buffer_.consume(n);
}

void http_session::read_head() {
  stream_.expires_after(ctx_->opts.head_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->on_head(ec, n);
      });
}

void http_session::on_head(beast::error_code ec, size_t n) {
  if (ec) {
    on_read(ec, n);
    return;
  }
  // Judged before a body byte reaches the parser: Boost 1.74's chunked
  // parser asserts on a final chunk that arrives in pieces (a remote abort
  // of any build with assertions; boostorg/beast#2861).
  if (auto refused = refuse_framing()) {
    first_request_ = false;
    respond(std::move(*refused));
    return;
  }
  if (parser_->is_done()) {
    on_read(ec, n);
    return;
  }
  // `Expect: 100-continue`: no route takes a body, so the answer is known
  // now; it goes at once rather than after the client's wait for a 100
  // (RFC 9110 10.1.1), and the connection closes, whether the body follows
  // or not.
  if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    close_after_answer_ = true;
    on_read({}, n);
    return;
  }
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t n) {
                     self->on_read(ec, n);
                   });
}

void http_session::on_read(beast::error_code ec, size_t) {
  if (ec == http::error::end_of_stream || ec == asio::error::eof
      || ec == beast::error::timeout || ec == asio::error::operation_aborted
      || ec == asio::error::connection_reset) {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  if (ec == http::error::header_limit) {
    respond(json_error(http::status::request_header_fields_too_large,
                       "request head too large", 11, false, ctx_->opts));
    return;
  }
  if (ec == http::error::body_limit) {
    respond(json_error(http::status::payload_too_large,
                       "request body too large", 11, false, ctx_->opts));
    return;
  }
  if (ec) {
    respond(json_error(http::status::bad_request, "malformed request", 11,
                       false, ctx_->opts));
    return;
  }
  first_request_ = false;
  handle();
}

std::optional<string_response> http_session::refuse_framing() {
  auto& req = parser_->get();
  auto fields = static_cast<size_t>(std::distance(req.begin(), req.end()));
  if (fields > ctx_->opts.max_header_fields)
    return json_error(http::status::request_header_fields_too_large,
                      "too many header fields", 11, false, ctx_->opts);
  // No route takes a body, so no request needs a Transfer-Encoding. Any is
  // refused: one whose last coding is not chunked, or any over HTTP/1.0,
  // leaves the body's end unknown (RFC 9112 6.1, 6.3: request smuggling),
  // and Boost 1.74 asserts on some chunked bodies.
  if (req.find(http::field::transfer_encoding) != req.end())
    return json_error(http::status::bad_request,
                      "Transfer-Encoding is not accepted (no route takes a "
                      "body; send Content-Length)",
                      11, false, ctx_->opts);
  // RFC 9112 3.2: an HTTP/1.1 request has exactly one Host.
  if (req.version() >= 11 && req.count(http::field::host) != 1)
    return json_error(http::status::bad_request,
                      "an HTTP/1.1 request needs exactly one Host header", 11,
                      false, ctx_->opts);
  return std::nullopt;
}

void http_session::handle() {
  auto& req = parser_->get();
  auto version = req.version();
  auto keep_alive = req.keep_alive();
  auto t = parse_request_target(to_std(req.target()));
  if (busy_) {
    // One connection too many: a health probe or a stream is still answered
    // (then the connection closes; a stream is bounded by --max-clients), so
    // that a flood of idle connections neither gets a healthy process
    // restarted by its liveness probe nor keeps new clients out; the rest
    // gets 503.
    if (!t || !answered_over_cap(route_for(t->path))
        || (req.method() != http::verb::get
            && req.method() != http::verb::head)) {
      auto res = json_error(http::status::service_unavailable,
                            "too many connections", version, false, ctx_->opts);
      res.set(http::field::retry_after, "1");
      respond(std::move(res));
      return;
    }
    keep_alive = false;
  }
  if (!t) {
    respond(json_error(http::status::bad_request, "malformed request target",
                       version, keep_alive, ctx_->opts));
    return;
  }
  auto kind = route_for(t->path);
  label_ = label_for(kind);
  if (admin_ && !admin_route(kind)) {
    label_ = route_label::unknown;
    respond(json_error(http::status::not_found, "not found on the admin port",
                       version, keep_alive, ctx_->opts));
    return;
  }
  std::optional<std::filesystem::path> file;
  if (kind == route_kind::static_file) {
    file = resolve_static(ctx_->opts.web_root, t->path);
    if (!file) {
      label_ = route_label::unknown;
      respond(json_error(http::status::not_found, "not found", version,
                         keep_alive, ctx_->opts));
      return;
    }
  }
  switch (action_for(to_std(req.method_string()))) {
  case method_action::not_allowed: {
    auto res
        = json_error(http::status::method_not_allowed, "method not allowed",
                     version, keep_alive, ctx_->opts);
    res.set(http::field::allow, to_beast(allowed_methods));
    respond(std::move(res));
    return;
  }
  case method_action::preflight:
    respond(preflight(version, keep_alive, ctx_->opts));
    return;
  case method_action::serve:
    break;
  }
  bool head_only = req.method() == http::verb::head;
  rest_request rq{version, keep_alive};
  auto& opts = ctx_->opts;
  switch (kind) {
  case route_kind::stream:
    serve_stream(*t, head_only);
    return;
  case route_kind::static_file:
    serve_file(*file, head_only);
    return;
  case route_kind::info:
    if (opts.node_id.empty()) {
      respond(info_response(rq, opts));
      return;
    }
    ctx_->services->leader(
        reply_later<std::string>([rq](auto& opts, auto& leader) {
          return info_response(rq, opts, leader);
        }));
    return;
  case route_kind::metrics:
    // A round trip through the core first: the buffer drops what outlived
    // its TTL, so its gauges are current even when nobody reads it.
    ctx_->services->health(
        reply_later<bool>([rq, ctx = ctx_](auto& opts, auto&) {
          return metrics_response(
              render_metrics(*ctx->stats, ctx->sse_clients.load(),
                             system_wall_clock{}.now_ms(), read_process_stats(),
                             ctx->services->running_actors()),
              rq, opts);
        }));
    return;
  case route_kind::price:
    ctx_->services->latest(
        reply_later<latest_answer>([rq](auto& opts, auto& got) {
          return price_response(got, rq, opts);
        }));
    return;
  case route_kind::prices: {
    auto since = prices_since(*t, system_wall_clock{}.now_ms());
    if (!since.error.empty()) {
      respond(json_error(http::status::bad_request, since.error, version,
                         keep_alive, opts));
      return;
    }
    ctx_->services->updates(since.since_ms,
                            reply_later<std::optional<std::vector<update>>>(
                                [rq](auto& opts, auto& updates) {
                                  return prices_response(updates, rq, opts);
                                }));
    return;
  }
  case route_kind::healthz:
    ctx_->services->health(reply_later<bool>([rq](auto& opts, auto& healthy) {
      return health_response(healthy, rq, opts);
    }));
    return;
  case route_kind::readyz:
    ctx_->services->latest(
        reply_later<latest_answer>([rq, ctx = ctx_](auto& opts, auto& got) {
          // No answer from the core: not ready, and not "starting" either
          // (draining says so first: the core ends during a shutdown).
          if (!got.answered && !ctx->draining.load())
            return health_response(false, rq, opts);
          const auto& latest = got.latest;
          // Cluster mode: not before the first backfill of the log.
          bool backfilled
              = !ctx->stats->cluster_mode || ctx->stats->cluster.ready.load();
          return ready_response(backfilled ? latest : std::nullopt,
                                ctx->draining.load(),
                                system_wall_clock{}.now_ms(), rq, opts);
        }));
    return;
  }
}

void http_session::serve_stream(const target& t, bool head_only) {
  auto& req = parser_->get();
  auto version = req.version();
  auto keep_alive = req.keep_alive();
  std::optional<std::string_view> last_event_id;
  if (auto i = req.find("Last-Event-ID"); i != req.end())
    last_event_id = std::string_view{i->value().data(), i->value().size()};
  auto choice
      = choose_resume_point(last_event_id, t, system_wall_clock{}.now_ms());
  if (!choice.point) {
    // A HEAD opens no stream: not a stream refused, whatever it is told.
    if (!head_only)
      ctx_->stats->count_rejection(reject_reason::bad_request);
    log(log_level::warn, "http session rejects a stream: " + choice.error);
    respond(json_error(http::status::bad_request, choice.error, version,
                       keep_alive, ctx_->opts));
    return;
  }
  auto unavailable = [&](std::string_view why) {
    auto res = json_error(http::status::service_unavailable, why, version,
                          keep_alive, ctx_->opts);
    auto secs = std::max<int64_t>(1, (ctx_->opts.retry.count() + 999) / 1000);
    res.set(http::field::retry_after, std::to_string(secs));
    respond(std::move(res));
  };
  if (ctx_->draining.load(std::memory_order_relaxed)) {
    unavailable("server is shutting down");
    return;
  }
  auto& count = ctx_->sse_clients;
  if (head_only) {
    // What a GET would get, without taking a slot (RFC 9110 9.3.2).
    if (count.load(std::memory_order_relaxed) >= ctx_->opts.max_clients) {
      unavailable("too many clients");
      return;
    }
    // The stream's header fields, no body: nothing to frame, so no chunking.
    string_response res{http::status::ok, version};
    for (auto& f : stream_header(version, ctx_->opts))
      res.set(f.name_string(), f.value());
    res.erase(http::field::transfer_encoding);
    res.keep_alive(keep_alive);
    respond(std::move(res));
    return;
  }
  if (count.fetch_add(1, std::memory_order_relaxed) >= ctx_->opts.max_clients) {
    count.fetch_sub(1, std::memory_order_relaxed);
    ctx_->stats->count_rejection(reject_reason::max_clients);
    log(log_level::warn, "http session rejects a stream: at --max-clients");
    unavailable("too many clients");
    return;
  }
  auto retry = jitter(ctx_->opts.retry.count(), 0.2, thread_random());
  ctx_->stats->count_request(route_label::stream, 200);
  log(log_level::debug,
      "http session opens a stream from "
          + (choice.point->given.empty() ? std::string{"the latest update"}
                                         : choice.point->given));
  std::ostringstream header;
  header << stream_header(version, ctx_->opts);
  auto sse = std::make_shared<sse_session>(stream_.release_socket(), ctx_,
                                           version >= 11);
  sse->start(header.str(), encode_retry(std::chrono::milliseconds{retry}),
             std::move(*choice.point));
}

void http_session::serve_file(const std::filesystem::path& file,
                              bool head_only) {
  auto& req = parser_->get();
  auto etag = etag_for(file);
  if (auto inm = req.find(http::field::if_none_match);
      inm != req.end() && etag_matches(to_std(inm->value()), etag)) {
    string_response res{http::status::not_modified, req.version()};
    add_common_headers(res, ctx_->opts);
    res.set(http::field::etag, etag);
    res.set(http::field::cache_control, to_beast(cache_control_for(file)));
    res.keep_alive(req.keep_alive());
    respond(std::move(res));
    return;
  }
  auto body = read_file(file);
  if (!body) {
    respond(json_error(http::status::not_found, "not found", req.version(),
                       req.keep_alive(), ctx_->opts));
    return;
  }
  string_response res{http::status::ok, req.version()};
  add_common_headers(res, ctx_->opts);
  res.set(http::field::content_type, to_beast(content_type_for(file)));
  res.set(http::field::cache_control, to_beast(cache_control_for(file)));
  if (!etag.empty())
    res.set(http::field::etag, etag);
  res.keep_alive(req.keep_alive());
  if (head_only) {
    res.content_length(body->size());
  } else {
    res.body() = std::move(*body);
    res.prepare_payload();
  }
  respond(std::move(res));
}

void http_session::respond(string_response res) {
  ctx_->stats->count_request(label_, static_cast<int>(res.result_int()));
  if (close_after_answer_)
    res.keep_alive(false);
  bool close = !res.keep_alive();
  pending_ = std::make_shared<string_response>(std::move(res));
  if (parser_ && parser_->is_header_done()
      && parser_->get().method() == http::verb::head) {
    // HEAD: the header as for GET, no body (Content-Length kept).
    pending_->body().clear();
  }
  stream_.expires_after(ctx_->opts.idle_timeout);
  http::async_write(
      stream_, *pending_,
      [self = shared_from_this(), close](beast::error_code ec, size_t n) {
        self->on_write(close, ec, n);
      });
}

void http_session::on_write(bool close, beast::error_code ec, size_t) {
  pending_.reset();
  if (ec)
    return;
  if (close) {
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    return;
  }
  do_read();
}

} // namespace btcstream

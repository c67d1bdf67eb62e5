// (a) The request path up to the response status, without a socket: raw
// bytes are read as http_session reads them (Beast's request_parser with
// our head and body limits, fed the way http::async_read feeds it), then
// decided as http_session's on_read, refuse_framing, handle and
// serve_stream decide: the router, the request target, the method,
// Last-Event-ID / lastEventId / since, and /api/v1/prices' since. The
// decision is reproduced here (it lives in http_session with its socket
// and actors); the calls are the session's own functions.
//
// The bytes are read twice, all at once and in small pieces: Beast's
// answer (and so ours) must not depend on where the reads split the input
// (except 400 against 431/413 for a request refused anyway, and a head of
// 8 to 16 KiB, see same_answers). Pipelined requests are answered one
// after the other, as on a kept-alive connection.

#include "fuzz_common.hpp"

#include "core/query.hpp"
#include "http/rest.hpp"
#include "http/router.hpp"
#include "http/server_context.hpp"
#include "http/static_files.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using namespace btcstream;

// A fixed "now" (2025-11-26): `since` decisions are then reproducible.
constexpr int64_t now_ms = 1'764'182'717'123;

const server_options& options() {
  static const server_options o = [] {
    server_options o;
    std::error_code ec;
    o.web_root = std::filesystem::canonical(BTCSTREAM_FUZZ_WEB_ROOT, ec);
    return o;
  }();
  return o;
}

// What the session did with one request: a status (0: none sent, the core
// answers later with 200 or 503), whether it closes, whether the socket was
// handed to an SSE session.
struct decision {
  unsigned status = 0;
  bool close = false;
  bool stream = false;
  // A request Beast refuses is refused either way; whether as malformed
  // (400) or as too large (431, 413) may depend on how much of it had
  // arrived: Beast checks the limits against what is buffered, and finds a
  // syntax error only once the whole head is there.
  static unsigned refused(unsigned s) { return s == 431 || s == 413 ? 400 : s; }
  bool operator==(const decision& o) const {
    return refused(status) == refused(o.status) && close == o.close
           && stream == o.stream;
  }
  bool operator!=(const decision& o) const { return !(*this == o); }
};

// The input as a socket: reads of at most `chunk` bytes.
struct fake_socket {
  std::string_view data;
  size_t chunk;
  std::string_view read() {
    auto n = std::min(chunk, data.size());
    auto out = data.substr(0, n);
    data.remove_prefix(n);
    return out;
  }
};

// http_session::on_head: a body is still to come, and the client waits for
// a 100 before it sends it.
bool expects_continue(const http::request_parser<http::string_body>& p) {
  return p.is_header_done() && !p.is_done()
         && beast::iequals(p.get()[http::field::expect], "100-continue");
}

// http::read(stream, buffer, parser) of Boost 1.74 (impl/read.hpp): eager,
// put() on what is buffered, read more on need_more, put_eof() at the end
// of the stream only if some bytes came, end_of_stream otherwise.
//
// Chunked bodies never reach the parser: the session refuses any
// Transfer-Encoding once the head is read (Beast 1.74 asserts, `n >= 5` in
// parse_chunk_header, boostorg/beast#2861, when the bytes after the last
// chunk's "0\r\n" come in more than one read: README, "Findings").
beast::error_code read_request(fake_socket& sock, std::string& buf,
                               http::request_parser<http::string_body>& p) {
  beast::error_code ec;
  int stuck = 0;
  while (!p.is_done()) {
    // async_read_header stops at the end of the head (not eager); the body
    // is read eagerly after it.
    p.eager(p.is_header_done());
    // http_session reads the head first and refuses any Transfer-Encoding
    // before a body byte reaches the parser (refuse_framing).
    if (p.is_header_done()
        && p.get().find(http::field::transfer_encoding) != p.get().end())
      return http::error::bad_transfer_encoding;
    // ... and answers `Expect: 100-continue` from the head alone.
    if (expects_continue(p))
      return {};
    if (!buf.empty()) {
      auto used = p.put(boost::asio::buffer(buf.data(), buf.size()), ec);
      buf.erase(0, used);
      if (ec && ec != http::error::need_more)
        return ec;
      if (!ec) {
        // No error and not done: put must have made progress, or the
        // session's read loop would spin.
        stuck = used == 0 ? stuck + 1 : 0;
        FUZZ_CHECK(stuck < 2);
        continue;
      }
    }
    auto more = sock.read();
    if (more.empty()) {
      if (p.got_some()) {
        p.put_eof(ec);
        if (ec)
          return ec;
        FUZZ_CHECK(p.is_done());
        return {};
      }
      return http::error::end_of_stream;
    }
    buf.append(more);
  }
  return {};
}

bool all_digits(std::string_view s) {
  for (auto c : s)
    if (c < '0' || c > '9')
      return false;
  return !s.empty();
}

// http_session::on_read, handle and serve_stream, with the core's answers
// left out.
decision decide(beast::error_code ec,
                http::request_parser<http::string_body>& p) {
  const auto& opts = options();
  if (ec == http::error::end_of_stream || ec == boost::asio::error::eof)
    return {0, true, false};
  if (ec == http::error::header_limit)
    return {431, true, false};
  if (ec == http::error::body_limit)
    return {413, true, false};
  if (ec)
    return {400, true, false};
  auto& req = p.get();
  FUZZ_CHECK(req.body().size() <= opts.max_body_bytes);
  // refuse_framing: too many fields (a Transfer-Encoding never gets here:
  // read_request refuses it with the head).
  if (static_cast<size_t>(std::distance(req.begin(), req.end()))
      > opts.max_header_fields)
    return {431, true, false};
  if (req.version() >= 11 && req.count(http::field::host) != 1)
    return {400, true, false};
  // A body may follow an answer given from the head: the session closes.
  bool close = !req.keep_alive() || expects_continue(p);
  auto raw_target = req.target();
  auto t = parse_request_target({raw_target.data(), raw_target.size()});
  if (!t)
    return {400, close, false};
  FUZZ_CHECK(!t->path.empty() && t->path.front() == '/');
  FUZZ_CHECK(t->path.find('\0') == std::string::npos);
  for (auto& [k, v] : t->params)
    FUZZ_CHECK(k.find('\0') == std::string::npos
               && v.find('\0') == std::string::npos);
  auto kind = route_for(t->path);
  (void)label_for(kind);
  if (kind == route_kind::static_file) {
    auto file = resolve_static(opts.web_root, t->path);
    if (!file)
      return {404, close, false};
    // Never a file outside the web root.
    auto root = opts.web_root.native() + "/";
    FUZZ_CHECK(file->native().compare(0, root.size(), root) == 0);
    FUZZ_CHECK(file->native().find("/../") == std::string::npos);
  }
  auto method = req.method_string();
  switch (action_for({method.data(), method.size()})) {
  case method_action::not_allowed:
    return {405, close, false};
  case method_action::preflight:
    return {204, close, false};
  case method_action::serve:
    break;
  }
  bool head_only = req.method() == http::verb::head;
  switch (kind) {
  case route_kind::stream: {
    std::optional<std::string_view> last_event_id;
    if (auto i = req.find("Last-Event-ID"); i != req.end())
      last_event_id = std::string_view{i->value().data(), i->value().size()};
    auto choice = choose_resume_point(last_event_id, *t, now_ms);
    FUZZ_CHECK(choice.point.has_value() != !choice.error.empty());
    if (!choice.point)
      return {400, close, false};
    // What the gap event will echo: digits (and a '.') only, never a byte
    // the client could use to break the event stream.
    auto& pt = *choice.point;
    switch (pt.what) {
    case resume_point::kind::latest:
      FUZZ_CHECK(pt.given.empty());
      break;
    case resume_point::kind::after_id:
      FUZZ_CHECK(all_digits(pt.given) && pt.given.size() <= 20);
      FUZZ_CHECK(parse_event_id(pt.given) == pt.id);
      break;
    case resume_point::kind::since:
    case resume_point::kind::live: {
      auto dot = pt.given.find('.');
      FUZZ_CHECK(all_digits(pt.given.substr(0, dot)));
      if (dot != std::string::npos)
        FUZZ_CHECK(all_digits(pt.given.substr(dot + 1)));
      FUZZ_CHECK(pt.since_ms <= now_ms + 86'400'000);
      FUZZ_CHECK((pt.what == resume_point::kind::live)
                 == (pt.since_ms > now_ms));
      break;
    }
    }
    if (head_only)
      return {200, close, false};
    return {200, false, true};
  }
  case route_kind::static_file:
  case route_kind::info:
    return {200, close, false};
  case route_kind::prices: {
    auto since = prices_since(*t, now_ms);
    FUZZ_CHECK(since.since_ms.has_value() == false || since.error.empty());
    if (!since.error.empty())
      return {400, close, false};
    return {0, close, false};
  }
  case route_kind::price:
  case route_kind::metrics:
  case route_kind::healthz:
  case route_kind::readyz:
    return {0, close, false};
  }
  FUZZ_CHECK(false);
  return {};
}

// Whether two reads of the same connection answered alike. One exception
// ends the comparison: a head larger than header_limit can be accepted when
// it arrives in one read and refused with 431 when it trickles in. Beast
// 1.74 measures the limit from the start of what it parses: the request
// line, then the fields after it, each up to header_limit; bytes still to
// come count against the limit of the whole buffered head.
bool same_answers(const std::vector<decision>& a,
                  const std::vector<decision>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] == b[i])
      continue;
    return a[i].status == 431 || b[i].status == 431;
  }
  return a.size() == b.size();
}

// A connection's worth of requests, read in pieces of `chunk` bytes.
std::vector<decision> serve(std::string_view input, size_t chunk) {
  const auto& opts = options();
  fake_socket sock{input, chunk};
  std::string buf; // http_session's flat_buffer, kept across requests
  std::vector<decision> out;
  for (int i = 0; i < 8; ++i) {
    // http_session::skip_empty_lines between requests: on what is buffered,
    // and on what comes while nothing else is.
    while (i > 0) {
      auto n = buf.find_first_not_of("\r\n");
      buf.erase(0, n == std::string::npos ? buf.size() : n);
      if (!buf.empty())
        break;
      auto more = sock.read();
      if (more.empty())
        break;
      buf.append(more);
    }
    http::request_parser<http::string_body> p;
    p.header_limit(opts.max_head_bytes);
    p.body_limit(opts.max_body_bytes);
    auto ec = read_request(sock, buf, p);
    auto d = decide(ec, p);
    out.push_back(d);
    if (d.close || d.stream)
      break;
  }
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FUZZ_CHECK(!options().web_root.empty());
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto whole = serve(input, input.size() + 1);
  auto pieces = serve(input, 1 + size % 61);
  if (!same_answers(whole, pieces)) {
    for (auto* run : {&whole, &pieces}) {
      std::fprintf(stderr, run == &whole ? "whole: " : "pieces:");
      for (auto& d : *run)
        std::fprintf(stderr, " %u%s%s", d.status, d.close ? " close" : "",
                     d.stream ? " stream" : "");
      std::fprintf(stderr, "\n");
    }
  }
  FUZZ_CHECK(same_answers(whole, pieces));
  return 0;
}

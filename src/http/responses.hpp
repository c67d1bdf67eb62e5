#pragma once

#include "http/server_context.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <string_view>

namespace btcstream {

namespace http = boost::beast::http;

using string_response = http::response<http::string_body>;

/// Boost 1.74's string_view and the standard one, both ways.
inline std::string_view to_std(boost::beast::string_view s) {
  return {s.data(), s.size()};
}
inline boost::beast::string_view to_beast(std::string_view s) {
  return {s.data(), s.size()};
}

/// Adds the headers every answer carries (CORS, Server).
void add_common_headers(http::response_header<>& h, const server_options& o);

/// A JSON error answer `{"error":"<message>"}`.
string_response json_error(http::status s, std::string_view message,
                           unsigned version, bool keep_alive,
                           const server_options& o);

/// The 204 answer to a CORS preflight.
string_response preflight(unsigned version, bool keep_alive,
                          const server_options& o);

/// The header of a `/stream` answer (200, text/event-stream), chunked for
/// HTTP/1.1 and close-delimited for HTTP/1.0.
http::response_header<> stream_header(unsigned version,
                                      const server_options& o);

} // namespace btcstream

#include "http/responses.hpp"

#include <boost/beast/version.hpp>
#include <nlohmann/json.hpp>

namespace btcstream {

void add_common_headers(http::response_header<>& h, const server_options& o) {
  h.set(http::field::server, "btcstream/" BTCSTREAM_VERSION);
  // A type is what it says: no browser sniffs a JSON error into a script.
  h.set("X-Content-Type-Options", "nosniff");
  h.set(http::field::access_control_allow_origin, o.cors_origin);
  if (o.cors_origin != "*")
    h.set(http::field::vary, "Origin");
}

string_response json_error(http::status s, std::string_view message,
                           unsigned version, bool keep_alive,
                           const server_options& o) {
  string_response res{s, version};
  add_common_headers(res, o);
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = nlohmann::json{{"error", message}}.dump() + "\n";
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

string_response preflight(unsigned version, bool keep_alive,
                          const server_options& o) {
  string_response res{http::status::no_content, version};
  add_common_headers(res, o);
  res.set(http::field::access_control_allow_methods, "GET, HEAD, OPTIONS");
  res.set(http::field::access_control_allow_headers, "Last-Event-ID");
  res.set(http::field::access_control_max_age, "600");
  res.keep_alive(keep_alive);
  return res;
}

http::response_header<> stream_header(unsigned version,
                                      const server_options& o) {
  http::response_header<> h;
  h.version(version);
  h.result(http::status::ok);
  add_common_headers(h, o);
  h.set(http::field::content_type, "text/event-stream");
  h.set(http::field::cache_control, "no-cache");
  h.set("X-Accel-Buffering", "no");
  if (version >= 11)
    h.set(http::field::transfer_encoding, "chunked");
  else
    h.set(http::field::connection, "close");
  return h;
}

} // namespace btcstream

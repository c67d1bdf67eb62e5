#pragma once

#include <functional>
#include <string>

namespace btcstream {

/// What kind of transport failure ended a request without an answer.
enum class transport_error {
  none,    ///< an HTTP answer arrived
  connect, ///< resolve or connect failed, or the connection broke mid-way
  tls,     ///< TLS handshake or verification failed
  timeout, ///< the request timeout expired
};

/// What one upstream request produced.
struct fetch_result {
  /// HTTP status, or 0 when no response arrived (see `error`).
  int status = 0;
  std::string body;
  /// The `Retry-After` header as sent, if any.
  std::string retry_after;
  /// Transport failure, `none` on a response.
  transport_error failure = transport_error::none;
  /// A description of the failure for logs (never holds request headers).
  std::string error;
};

/// The fetcher's port to the network, so actor tests can answer by hand.
struct upstream_client {
  virtual ~upstream_client() = default;
  /// Starts one request; `done` is called exactly once, from any thread.
  virtual void fetch(std::function<void(fetch_result)> done) = 0;
  /// Cancels a request in flight and closes the connection.
  virtual void stop() = 0;
};

} // namespace btcstream

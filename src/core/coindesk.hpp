#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace btcstream {

/// Why an upstream answer was not usable.
enum class coindesk_error {
  none,
  http_status,   ///< not HTTP 200
  not_json,      ///< body is not a JSON document
  bad_shape,     ///< no `Data` object, or `Err` not empty
  no_instrument, ///< the instrument is missing from `Data`
  bad_value,     ///< `VALUE` missing, not a number, not finite, or <= 0
};

/// A short, stable name for logs and metrics.
const char* to_string(coindesk_error e);

/// The outcome of parsing one CoinDesk answer.
struct coindesk_result {
  std::optional<double> price;
  coindesk_error error = coindesk_error::none;
  /// A human-readable detail (upstream `Err.message`, JSON parse position);
  /// never contains request headers.
  std::string detail;
};

/// Validates an answer of `/index/cc/v1/latest/tick`: HTTP 200, a `Data`
/// object holding `instrument` with a finite `VALUE` > 0.
coindesk_result parse_coindesk(int status, std::string_view body,
                               std::string_view instrument);

} // namespace btcstream

#pragma once

#include "core/query.hpp"
#include "core/service_port.hpp"
#include "core/update.hpp"
#include "http/responses.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace btcstream {

/// How the answers of the JSON routes are built (DESIGN.md, Public HTTP API).
/// Each takes what the core answered and returns the whole response.
struct rest_request {
  unsigned version = 11;
  bool keep_alive = true;
};

/// /api/v1/price: the latest update, or 503 before the first or when the
/// buffer did not answer.
string_response price_response(const latest_answer& got, const rest_request& rq,
                               const server_options& o);

/// /api/v1/prices: the buffered updates as a JSON array, oldest first; 503
/// when the core did not answer (nullopt), never an empty list for it.
string_response prices_response(const std::optional<std::vector<update>>& got,
                                const rest_request& rq,
                                const server_options& o);

/// /api/v1/info: the service's timing and limits, and the mode; in cluster
/// mode (`o.node_id` set) with the node and the
/// lease holder (`leader`, null when empty).
string_response info_response(const rest_request& rq, const server_options& o,
                              const std::string& leader = {});

/// /healthz: 200 when the core actors answered a round trip, else 503.
string_response health_response(bool healthy, const rest_request& rq,
                                const server_options& o);

/// /readyz: 503 starting (no price yet; in cluster mode also before the first
/// backfill, which the caller folds into `latest`) or draining; else 200 ok, or
/// stale with the last price's age when none came for 3 intervals.
string_response ready_response(const std::optional<update>& latest,
                               bool draining, int64_t now_ms,
                               const rest_request& rq, const server_options& o);

/// /metrics: the Prometheus text exposition `text`.
string_response metrics_response(std::string text, const rest_request& rq,
                                 const server_options& o);

/// The `since` of /api/v1/prices: nothing when absent; an error text for a
/// 400 when malformed, given twice or more than a day in the future.
struct since_choice {
  std::optional<int64_t> since_ms;
  std::string error;
};
since_choice prices_since(const target& t, int64_t now_ms);

} // namespace btcstream

#include "http/rest.hpp"

#include "core/query.hpp"
#include "core/sse.hpp"

#include <nlohmann/json.hpp>

#include <cmath>

namespace btcstream {

namespace {

constexpr int64_t day_ms = 24 * 60 * 60 * 1000;

string_response json_answer(http::status s, std::string body,
                            const rest_request& rq, const server_options& o) {
  string_response res{s, rq.version};
  add_common_headers(res, o);
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.body() += '\n';
  res.keep_alive(rq.keep_alive);
  res.prepare_payload();
  return res;
}

/// 503 for a buffer that did not answer in time: not "none" or "empty".
string_response no_answer(const rest_request& rq, const server_options& o) {
  auto res = json_error(http::status::service_unavailable,
                        "the buffer did not answer in time", rq.version,
                        rq.keep_alive, o);
  res.set(http::field::retry_after, "1");
  return res;
}

} // namespace

string_response price_response(const latest_answer& got, const rest_request& rq,
                               const server_options& o) {
  if (!got.answered) {
    return no_answer(rq, o);
  }
  const auto& latest = got.latest;
  if (!latest) {
    auto res = json_error(http::status::service_unavailable, "no price yet",
                          rq.version, rq.keep_alive, o);
    res.set(http::field::retry_after,
            std::to_string(std::max<int64_t>(1, o.interval.count() / 1000)));
    return res;
  }
  return json_answer(http::status::ok, update_json(*latest), rq, o);
}

string_response prices_response(const std::optional<std::vector<update>>& got,
                                const rest_request& rq,
                                const server_options& o) {
  if (!got) {
    return no_answer(rq, o);
  }
  const auto& updates = *got;
  std::string body = "[";
  for (size_t i = 0; i < updates.size(); ++i) {
    if (i > 0)
      body += ',';
    body += update_json(updates[i]);
  }
  body += ']';
  return json_answer(http::status::ok, std::move(body), rq, o);
}

string_response info_response(const rest_request& rq, const server_options& o,
                              const std::string& leader) {
  nlohmann::json j{
      {"interval_ms", o.interval.count()},
      {"history_ttl_ms", o.history_ttl.count()},
      {"history_max", o.history_max},
      {"heartbeat_ms", o.heartbeat.count()},
      {"version", BTCSTREAM_VERSION},
      {"mode", o.node_id.empty() ? "single" : "cluster"},
  };
  if (!o.node_id.empty()) {
    j["node"] = o.node_id;
    j["leader"] = leader.empty() ? nlohmann::json() : nlohmann::json(leader);
  }
  return json_answer(http::status::ok, j.dump(), rq, o);
}

string_response health_response(bool healthy, const rest_request& rq,
                                const server_options& o) {
  if (healthy)
    return json_answer(http::status::ok, R"({"status":"ok"})", rq, o);
  return json_answer(http::status::service_unavailable,
                     R"({"status":"unavailable"})", rq, o);
}

string_response ready_response(const std::optional<update>& latest,
                               bool draining, int64_t now_ms,
                               const rest_request& rq,
                               const server_options& o) {
  if (draining)
    return json_answer(http::status::service_unavailable,
                       R"({"status":"draining"})", rq, o);
  if (!latest)
    return json_answer(http::status::service_unavailable,
                       R"({"status":"starting"})", rq, o);
  auto age_ms = std::max<int64_t>(0, now_ms - latest->ts_ms);
  if (age_ms <= 3 * o.interval.count())
    return json_answer(http::status::ok, R"({"status":"ok"})", rq, o);
  nlohmann::json j{{"status", "stale"},
                   {"last_price_age_s", static_cast<double>(age_ms) / 1000.0}};
  return json_answer(http::status::ok, j.dump(), rq, o);
}

string_response metrics_response(std::string text, const rest_request& rq,
                                 const server_options& o) {
  string_response res{http::status::ok, rq.version};
  add_common_headers(res, o);
  res.set(http::field::content_type,
          "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(text);
  res.keep_alive(rq.keep_alive);
  res.prepare_payload();
  return res;
}

since_choice prices_since(const target& t, int64_t now_ms) {
  since_choice c;
  if (t.repeated({"since"})) {
    c.error = "since given more than once";
    return c;
  }
  auto raw = t.param("since");
  if (!raw)
    return c;
  auto ms = parse_since_ms(*raw);
  if (!ms) {
    c.error = "invalid since";
    return c;
  }
  if (*ms > now_ms + day_ms) {
    c.error = "since is more than a day in the future";
    return c;
  }
  c.since_ms = ms;
  return c;
}

} // namespace btcstream

#include "core/coindesk.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

namespace btcstream {

namespace {

using nlohmann::json;

constexpr size_t max_detail = 200;

// Cuts at most `max_detail` bytes without splitting a UTF-8 sequence.
std::string truncate(std::string s) {
  if (s.size() <= max_detail)
    return s;
  auto n = max_detail;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  s.resize(n);
  return s;
}

// `Err.message`, if the document carries one.
std::string err_message(const json& doc) {
  if (!doc.is_object())
    return {};
  auto err = doc.find("Err");
  if (err == doc.end() || !err->is_object())
    return {};
  auto msg = err->find("message");
  if (msg == err->end() || !msg->is_string())
    return {};
  return truncate(msg->get<std::string>());
}

coindesk_result fail(coindesk_error e, std::string detail) {
  coindesk_result r;
  r.error = e;
  r.detail = std::move(detail);
  return r;
}

} // namespace

const char* to_string(coindesk_error e) {
  switch (e) {
  case coindesk_error::none:
    return "none";
  case coindesk_error::http_status:
    return "http_status";
  case coindesk_error::not_json:
    return "not_json";
  case coindesk_error::bad_shape:
    return "bad_shape";
  case coindesk_error::no_instrument:
    return "no_instrument";
  case coindesk_error::bad_value:
    return "bad_value";
  }
  return "unknown";
}

coindesk_result parse_coindesk(int status, std::string_view body,
                               std::string_view instrument) {
  json doc;
  std::string parse_error;
  bool overflow = false;
  try {
    doc = json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    // The byte offset only: the message would echo hostile body bytes.
    parse_error = "invalid JSON at byte " + std::to_string(e.byte);
  } catch (const json::out_of_range&) {
    // nlohmann 3.11 rejects a number beyond double range (`1e400`) where
    // older versions read inf; both count as a bad VALUE.
    overflow = true;
  } catch (const std::exception&) {
    parse_error = "invalid JSON";
  }
  if (status != 200) {
    auto msg = err_message(doc);
    if (msg.empty())
      msg = "HTTP " + std::to_string(status);
    return fail(coindesk_error::http_status, std::move(msg));
  }
  if (overflow)
    return fail(coindesk_error::bad_value, "number out of range");
  if (!parse_error.empty())
    return fail(coindesk_error::not_json, std::move(parse_error));
  if (!doc.is_object())
    return fail(coindesk_error::bad_shape, "document is not an object");
  auto err = doc.find("Err");
  if (err != doc.end() && !err->is_null()
      && !(err->is_object() && err->empty())) {
    auto msg = err_message(doc);
    return fail(coindesk_error::bad_shape,
                msg.empty() ? std::string{"Err is not empty"} : msg);
  }
  auto data = doc.find("Data");
  if (data == doc.end() || !data->is_object())
    return fail(coindesk_error::bad_shape, "no Data object");
  auto item = data->find(std::string{instrument});
  if (item == data->end())
    return fail(coindesk_error::no_instrument,
                truncate("no " + std::string{instrument} + " in Data"));
  if (!item->is_object())
    return fail(coindesk_error::bad_value, "instrument is not an object");
  auto value = item->find("VALUE");
  if (value == item->end())
    return fail(coindesk_error::bad_value, "no VALUE");
  if (!value->is_number())
    return fail(coindesk_error::bad_value, "VALUE is not a number");
  auto price = value->get<double>();
  if (!std::isfinite(price) || !(price > 0))
    return fail(coindesk_error::bad_value, "VALUE is not finite and > 0");
  coindesk_result r;
  r.price = price;
  return r;
}

} // namespace btcstream

// (b) The validation of a CoinDesk answer: parse_coindesk(status, body,
// instrument) on any bytes. Input: one byte picks the HTTP status, one byte
// the length of an instrument name (0: "BTC-USD"), then the name, then the
// body.
//
// Invariants: a price exactly when there is no error; a price is finite and
// > 0; any status but 200 is an http_status error; the detail is short,
// never echoes a body that is not JSON, and cuts no UTF-8 sequence of
// upstream text.

#include "fuzz_common.hpp"

#include "core/coindesk.hpp"

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

namespace {

using namespace btcstream;

constexpr int statuses[] = {200, 200, 200, 200, 400, 401, 404, 429,
                            500, 502, 503, 0,   199, 201, 301, 999};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::reader in{data, size};
  auto status = statuses[in.take<uint8_t>() % 16];
  auto len = in.take<uint8_t>() % 32;
  auto instrument = len == 0 ? std::string{"BTC-USD"} : in.take_string(len);
  auto body = in.rest();

  auto r = parse_coindesk(status, body, instrument);
  FUZZ_CHECK(r.price.has_value() == (r.error == coindesk_error::none));
  if (r.price) {
    FUZZ_CHECK(std::isfinite(*r.price) && *r.price > 0);
    FUZZ_CHECK(r.detail.empty());
    // The same answer, read by the JSON library directly.
    auto doc = nlohmann::json::parse(body);
    FUZZ_CHECK(doc.at("Data").at(instrument).at("VALUE").get<double>()
               == *r.price);
  }
  if (status != 200)
    FUZZ_CHECK(r.error == coindesk_error::http_status);
  FUZZ_CHECK(r.detail.size() <= 200);
  FUZZ_CHECK(std::string{to_string(r.error)} != "unknown");
  if (r.error == coindesk_error::not_json)
    FUZZ_CHECK(r.detail.rfind("invalid JSON", 0) == 0
               && r.detail.find_first_not_of("invalid JSONatbyte 0123456789")
                      == std::string::npos);
  // Upstream text (Err.message) is cut on a UTF-8 boundary.
  if (r.error == coindesk_error::http_status
      || r.error == coindesk_error::bad_shape)
    FUZZ_CHECK(fuzz::valid_utf8(r.detail));
  return 0;
}

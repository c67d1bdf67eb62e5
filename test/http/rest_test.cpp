// The REST answers' status and headers, without a socket.

#include "http/rest.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <vector>

using namespace btcstream;

TEST_CASE("prices: a list when the buffer answers, 503 when it does not") {
  server_options o;
  rest_request rq;
  auto none = prices_response(std::vector<update>{}, rq, o);
  CHECK(none.result() == http::status::ok);
  CHECK(none.body() == "[]\n");
  auto two = prices_response(
      std::vector<update>{{1, 1000, 97000.5}, {2, 2000, 97001.0}}, rq, o);
  CHECK(two.result() == http::status::ok);
  CHECK(two.body().front() == '[');
  CHECK(two.body().find("97001") != std::string::npos);
  // The core did not answer in time: not "no updates".
  auto failed = prices_response(std::nullopt, rq, o);
  CHECK(failed.result() == http::status::service_unavailable);
  CHECK(failed[http::field::retry_after] == "1");
  CHECK(failed.body().find("did not answer") != std::string::npos);
}

TEST_CASE("price: the latest, 503 before the first, 503 when the buffer does "
          "not answer, each saying which") {
  server_options o;
  rest_request rq;
  auto ok
      = price_response(latest_answer{true, update{1, 1000, 97000.5}}, rq, o);
  CHECK(ok.result() == http::status::ok);
  CHECK(ok.body().find("97000.5") != std::string::npos);
  auto early = price_response(latest_answer{true, std::nullopt}, rq, o);
  CHECK(early.result() == http::status::service_unavailable);
  CHECK(early.body().find("no price yet") != std::string::npos);
  auto failed = price_response(latest_answer{false, std::nullopt}, rq, o);
  CHECK(failed.result() == http::status::service_unavailable);
  CHECK(failed[http::field::retry_after] == "1");
  CHECK(failed.body().find("did not answer") != std::string::npos);
}

TEST_CASE("prices' since: absent, valid, malformed, given twice") {
  auto since = [](std::string_view raw) {
    return prices_since(*parse_target(raw), 1'795'718'717'123);
  };
  CHECK(since("/api/v1/prices").since_ms == std::nullopt);
  CHECK(since("/api/v1/prices").error.empty());
  CHECK(since("/api/v1/prices?since=5").since_ms == 5000);
  CHECK(since("/api/v1/prices?since=x").error == "invalid since");
  for (auto raw :
       {"/api/v1/prices?since=5&since=x", "/api/v1/prices?since=x&since=5"})
    CHECK_MESSAGE(since(raw).error == "since given more than once", raw);
}

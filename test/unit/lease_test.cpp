#include "core/lease.hpp"

#include "core/cluster_log.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>

using namespace btcstream;
using namespace std::chrono_literals;

namespace {

using change = lease_view::change;

// A 12 s TTL: requests every 4 s, a deadline 9 s after a request was sent.
constexpr int64_t s_ns = 1'000'000'000;
constexpr int64_t three_quarters = 9 * s_ns;

lease_reply held_by(std::string node, uint64_t token) {
  lease_reply r;
  r.token = token;
  r.node = std::move(node);
  return r;
}

lease_reply failed(log_failure why) {
  lease_reply r;
  r.failure = why;
  r.error = "connection refused";
  return r;
}

// Node "a", leading with token 7 after a request sent at 0 (deadline 9 s).
lease_view leader() {
  lease_view l{"a", 12s};
  REQUIRE(l.on_reply(0, s_ns / 10, held_by("a", 7)) == change::acquired);
  REQUIRE(l.deadline_ns() == three_quarters);
  return l;
}

} // namespace

TEST_CASE("a lease request goes out every third of the TTL") {
  CHECK(lease_view{"a", 12s}.period() == 4s);
  CHECK(lease_view{"a", 10s}.period() == 3'333'333'333ns);
  CHECK(lease_view{"a", 3ns}.period() == 1ns);
}

TEST_CASE("a new view follows, with no token, holder or deadline") {
  lease_view l{"a", 12s};
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.holder().empty());
  CHECK(l.deadline_ns() == 0);
  CHECK(l.on_time(1'000 * s_ns) == change::none);
  CHECK(!l.leading());
}

TEST_CASE("a reply granting this node the lease makes it lead") {
  lease_view l{"a", 12s};
  CHECK(l.on_reply(5 * s_ns, 5 * s_ns + 2'000'000, held_by("a", 7))
        == change::acquired);
  CHECK(l.leading());
  CHECK(l.token() == 7);
  CHECK(l.holder() == "a");
  // 3/4 of the TTL after the request was sent, not after the reply came.
  CHECK(l.deadline_ns() == 5 * s_ns + three_quarters);
}

TEST_CASE("a renewal changes nothing but the deadline") {
  auto l = leader();
  CHECK(l.on_reply(4 * s_ns, 4 * s_ns + 3'000'000, held_by("a", 7))
        == change::none);
  CHECK(l.leading());
  CHECK(l.token() == 7);
  CHECK(l.holder() == "a");
  CHECK(l.deadline_ns() == 4 * s_ns + three_quarters);
}

TEST_CASE("a new token in a reply to a leader replaces its token") {
  // Redis let the lease go and granted it again: the old token is fenced.
  auto l = leader();
  CHECK(l.on_reply(4 * s_ns, 5 * s_ns, held_by("a", 8)) == change::none);
  CHECK(l.leading());
  CHECK(l.token() == 8);
  CHECK(l.deadline_ns() == 4 * s_ns + three_quarters);
}

TEST_CASE("a lease held by another node makes a leader lose it") {
  auto l = leader();
  CHECK(l.on_reply(4 * s_ns, 5 * s_ns, held_by("b", 9)) == change::lost);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.holder() == "b");
  // Still held by b: nothing more to lose.
  CHECK(l.on_reply(8 * s_ns, 9 * s_ns, held_by("b", 9)) == change::none);
  CHECK(l.on_time(100 * s_ns) == change::none);
  CHECK(l.token() == 0);
}

TEST_CASE("a lease held by another node leaves a follower following") {
  lease_view l{"a", 12s};
  CHECK(l.on_reply(0, 1'000, held_by("b", 9)) == change::none);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.holder() == "b");
}

TEST_CASE("a lease held by nobody makes a leader lose it") {
  auto l = leader();
  CHECK(l.on_reply(4 * s_ns, 5 * s_ns, held_by("", 0)) == change::lost);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.holder().empty());
}

TEST_CASE("a failed reply changes nothing before the deadline") {
  for (auto why : {log_failure::connect, log_failure::timeout,
                   log_failure::protocol, log_failure::server}) {
    auto l = leader();
    CHECK(l.on_reply(4 * s_ns, three_quarters - 1, failed(why))
          == change::none);
    CHECK(l.leading());
    CHECK(l.token() == 7);
    CHECK(l.holder() == "a");
    CHECK(l.deadline_ns() == three_quarters);
  }
}

TEST_CASE("a failed reply at or after the deadline loses the lease") {
  auto at = leader();
  CHECK(at.on_reply(4 * s_ns, three_quarters, failed(log_failure::timeout))
        == change::lost);
  CHECK(!at.leading());
  CHECK(at.token() == 7);
  CHECK(at.holder().empty()); // unknown now: Redis may have let it go
  auto after = leader();
  CHECK(after.on_reply(4 * s_ns, 20 * s_ns, failed(log_failure::connect))
        == change::lost);
  CHECK(!after.leading());
  CHECK(after.token() == 7);
}

TEST_CASE("a failed reply leaves a follower as it was") {
  lease_view l{"a", 12s};
  REQUIRE(l.on_reply(0, 1'000, held_by("b", 9)) == change::none);
  CHECK(l.on_reply(4 * s_ns, 100 * s_ns, failed(log_failure::server))
        == change::none);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.holder() == "b");
}

TEST_CASE("a leader loses the lease exactly at its deadline") {
  auto l = leader();
  CHECK(l.on_time(three_quarters - 1) == change::none);
  CHECK(l.leading());
  CHECK(l.on_time(three_quarters) == change::lost);
  CHECK(!l.leading());
  CHECK(l.on_time(three_quarters + 1) == change::none);
  CHECK(!l.leading());
}

TEST_CASE("a reply for this node after 3/4 of the TTL does not make it lead") {
  lease_view l{"a", 12s};
  CHECK(l.on_reply(0, three_quarters, held_by("a", 7)) == change::none);
  CHECK(!l.leading());
  CHECK(l.holder() == "a");
  CHECK(l.on_reply(s_ns, s_ns + 20 * s_ns, held_by("a", 7)) == change::none);
  CHECK(!l.leading());
  // One nanosecond earlier it would have.
  lease_view in_time{"a", 12s};
  CHECK(in_time.on_reply(0, three_quarters - 1, held_by("a", 7))
        == change::acquired);
  CHECK(in_time.deadline_ns() == three_quarters);
}

TEST_CASE("a late renewal past the old deadline loses the lease") {
  auto l = leader();
  // Sent at 4 s, it would have extended to 13 s, but arrives at 13 s.
  CHECK(l.on_reply(4 * s_ns, 4 * s_ns + three_quarters, held_by("a", 7))
        == change::lost);
  CHECK(!l.leading());
  CHECK(l.token() == 7);
  CHECK(l.deadline_ns() == three_quarters);
}

TEST_CASE("a late renewal before the old deadline keeps the leader leading") {
  // A reply to an older request, overtaken by the deadline of a newer one.
  auto l = leader();
  REQUIRE(l.on_reply(4 * s_ns, 4 * s_ns + 1'000, held_by("a", 7))
          == change::none);
  REQUIRE(l.deadline_ns() == 4 * s_ns + three_quarters);
  CHECK(l.on_reply(0, 10 * s_ns, held_by("a", 7)) == change::none);
  CHECK(l.leading());
  CHECK(l.deadline_ns() == 4 * s_ns + three_quarters);
}

TEST_CASE("after a loss at the deadline the token is kept and a grant "
          "leads again") {
  auto l = leader();
  REQUIRE(l.on_time(three_quarters) == change::lost);
  // The next request renews with token 7: Redis may still hold it for us.
  CHECK(l.token() == 7);
  CHECK(l.on_reply(10 * s_ns, 10 * s_ns + 5'000, held_by("a", 7))
        == change::acquired);
  CHECK(l.leading());
  CHECK(l.token() == 7);
  CHECK(l.deadline_ns() == 10 * s_ns + three_quarters);
}

TEST_CASE("a fenced append makes a leader lose the lease and its token") {
  auto l = leader();
  CHECK(l.on_fenced() == change::lost);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
  CHECK(l.on_fenced() == change::none);
  CHECK(l.token() == 0);
  CHECK(l.on_time(100 * s_ns) == change::none);
  // Granted again (a new token): leads again.
  CHECK(l.on_reply(20 * s_ns, 20 * s_ns + 1'000, held_by("a", 11))
        == change::acquired);
  CHECK(l.token() == 11);
}

TEST_CASE("a fenced append on a follower changes nothing") {
  lease_view l{"a", 12s};
  CHECK(l.on_fenced() == change::none);
  CHECK(!l.leading());
  CHECK(l.token() == 0);
}

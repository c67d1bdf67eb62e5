// The Redis log and lease against a real redis-server (test/cluster/
// redis_server.hpp): the scripts' semantics, trimming, reads and decoding.

#include "fixture.hpp"

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

// A realistic unix-ms timestamp (2023-11-14): ids of this size must survive
// Lua's doubles exactly.
constexpr int64_t base = 1700000000000;

} // namespace

TEST_CASE_FIXTURE(cluster_fixture, "a lease is granted, renewed, refused, "
                                   "and granted again after expiry") {
  // 4 s: the asks below all run well within it, however slow the machine.
  auto a = lease("node-a", 0, 4s);
  REQUIRE(a.failure == log_failure::none);
  CHECK(a.node == "node-a");
  CHECK(a.token >= 1u);
  CHECK(cmd({"GET", "t:lease"}).str == std::to_string(a.token) + " node-a");
  auto granted_pttl = cmd({"PTTL", "t:lease"}).integer;
  CHECK(granted_pttl > 0); // the grant itself expires, not just a renewal
  CHECK(granted_pttl <= 4000);
  auto renewed = lease("node-a", a.token, 4s);
  CHECK(renewed.token == a.token);
  CHECK(renewed.node == "node-a");
  auto refused = lease("node-b", 0, 4s);
  CHECK(refused.token == a.token);
  CHECK(refused.node == "node-a");
  // A stale token of the holder's own node does not renew either.
  CHECK(lease("node-a", a.token + 1, 4s).token == a.token);
  auto pttl = cmd({"PTTL", "t:lease"});
  CHECK(pttl.integer > 0);
  CHECK(pttl.integer <= 4000);
  // Redis expires it (nobody renews it): waited for, up to 4 s past the TTL.
  auto until = std::chrono::steady_clock::now() + 8s;
  while (cmd({"EXISTS", "t:lease"}).integer != 0) {
    REQUIRE(std::chrono::steady_clock::now() < until);
    std::this_thread::sleep_for(50ms);
  }
  auto b = lease("node-b", 0, 10s);
  CHECK(b.node == "node-b");
  CHECK(b.token > a.token);
  auto deposed = lease("node-a", a.token, 10s);
  CHECK(deposed.node == "node-b");
  CHECK(deposed.token == b.token);
}

TEST_CASE_FIXTURE(cluster_fixture, "a node that lost the reply to its grant "
                                   "asks again without a token: the lease is "
                                   "its own, and runs from that answer") {
  // A 4 s lease and waits of 2.5 s and 2 s: each check below has 1 s or more
  // between its outcomes, whatever the scheduling delays.
  auto a = lease("node-a", 0, 4s);
  REQUIRE(a.node == "node-a");
  std::this_thread::sleep_for(2500ms); // the reply "lost": no renewal
  auto again = lease("node-a", 0, 4s);
  CHECK(again.node == "node-a");
  CHECK(again.token == a.token);
  // Extended to 4 s from now, not left at the <= 1.5 s the grant had left:
  // the node relies on it from this answer on.
  CHECK(cmd({"PTTL", "t:lease"}).integer > 2500);
  // Another node's tokenless ask extends nothing.
  std::this_thread::sleep_for(2s);
  CHECK(lease("node-b", 0, 4s).node == "node-a");
  CHECK(cmd({"PTTL", "t:lease"}).integer <= 2000);
}

TEST_CASE_FIXTURE(cluster_fixture, "a release deletes the lease only for its "
                                   "holder's token, and the next one is "
                                   "granted at once with a larger token") {
  auto a = lease("node-a", 0);
  REQUIRE(a.node == "node-a");
  auto wrong_node = release("node-b", a.token);
  REQUIRE(wrong_node.failure == log_failure::none);
  CHECK_FALSE(wrong_node.released);
  CHECK_FALSE(release("node-a", a.token + 1).released);
  CHECK(cmd({"GET", "t:lease"}).str == std::to_string(a.token) + " node-a");
  CHECK(release("node-a", a.token).released);
  CHECK(cmd({"EXISTS", "t:lease"}).integer == 0);
  CHECK_FALSE(release("node-a", a.token).released); // gone already
  auto b = lease("node-b", 0);
  CHECK(b.node == "node-b");
  CHECK(b.token > a.token);
  // The released token is fenced.
  CHECK(append("node-a", a.token, base, 1.5).fenced);
}

TEST_CASE_FIXTURE(cluster_fixture, "append assigns max(ts, top + 1, floor) "
                                   "and links prev") {
  auto l = lease("n", 0);
  auto first = append("n", l.token, base, 43210.5);
  REQUIRE(first.failure == log_failure::none);
  CHECK_FALSE(first.fenced);
  CHECK(first.id == uint64_t(base));
  CHECK(append("n", l.token, base, 1.5).id == uint64_t(base + 1));
  CHECK(append("n", l.token, base - 50, 2.5).id == uint64_t(base + 2));
  CHECK(append("n", l.token, base, 3.5, base + 100).id == uint64_t(base + 100));
  CHECK(append("n", l.token, base + 5000, 0.1).id == uint64_t(base + 5000));
  auto r = read(0);
  REQUIRE(r.failure == log_failure::none);
  CHECK(r.malformed == 0);
  REQUIRE(r.entries.size() == 5);
  std::vector<uint64_t> ids, prevs;
  for (auto& e : r.entries) {
    ids.push_back(e.u.id);
    prevs.push_back(e.prev);
  }
  CHECK(ids
        == std::vector<uint64_t>{base, base + 1, base + 2, base + 100,
                                 base + 5000});
  CHECK(prevs
        == std::vector<uint64_t>{0, base, base + 1, base + 2, base + 100});
  CHECK(r.entries[0].u.ts_ms == base);
  CHECK(r.entries[0].u.price == 43210.5);
  CHECK(r.entries[2].u.ts_ms == base - 50);
  CHECK(r.entries[4].u.price == 0.1);
  // Redis's clock in unix ms: within a day of ours.
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  CHECK(std::abs(r.entries[0].appended_ms - now_ms) < 86400000);
  CHECK(cmd({"XRANGE", "t:log", "-", "+"}).elements[1].elements[0].str
        == std::to_string(base + 1) + "-0");
}

TEST_CASE_FIXTURE(cluster_fixture, "prices round-trip exactly") {
  auto l = lease("n", 0);
  std::vector<double> prices{0.1,  1.0 / 3.0, 67891.23000000001,
                             1e-7, 1e21,      123456789.98765432};
  for (size_t i = 0; i < prices.size(); ++i)
    REQUIRE(append("n", l.token, base + int64_t(i), prices[i]).id > 0u);
  auto r = read(0);
  REQUIRE(r.entries.size() == prices.size());
  for (size_t i = 0; i < prices.size(); ++i)
    CHECK(r.entries[i].u.price == prices[i]);
}

TEST_CASE_FIXTURE(cluster_fixture, "an append without the lease is fenced "
                                   "and writes nothing") {
  auto none = append("n", 1, base, 1.0);
  CHECK(none.failure == log_failure::none);
  CHECK(none.fenced);
  CHECK(cmd({"EXISTS", "t:log"}).integer == 0);
  auto l = lease("n", 0);
  REQUIRE(append("n", l.token, base, 1.0).id == uint64_t(base));
  CHECK(append("other", l.token, base + 1, 1.0).fenced);
  CHECK(append("n", l.token + 1, base + 1, 1.0).fenced);
  CHECK(append("n", l.token - 1, base + 1, 1.0).fenced);
  CHECK(cmd({"XLEN", "t:log"}).integer == 1);
}

TEST_CASE_FIXTURE(cluster_fixture, "the log is trimmed by length and by age") {
  auto l = lease("n", 0);
  for (int i = 0; i < 5; ++i)
    append("n", l.token, base + i, 1.0, 0, 3);
  CHECK(cmd({"XLEN", "t:log"}).integer == 3);
  auto r = read(0);
  REQUIRE(r.entries.size() == 3);
  CHECK(r.entries[0].u.id == uint64_t(base + 2));
  CHECK(r.entries[0].prev == uint64_t(base + 1));
  // Age: entries with id < ts - ttl go; the one at exactly ts - ttl stays.
  append("n", l.token, base + 100, 1.0, 0, 1000, 96ms);
  r = read(0);
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[0].u.id == uint64_t(base + 4));
  CHECK(r.entries[1].u.id == uint64_t(base + 100));
}

TEST_CASE_FIXTURE(cluster_fixture, "reads start after an id and stop at "
                                   "count") {
  // A missing stream reads as empty.
  auto missing = read(0);
  CHECK(missing.failure == log_failure::none);
  CHECK(missing.entries.empty());
  auto l = lease("n", 0);
  for (int i = 0; i < 5; ++i)
    append("n", l.token, base + i, 1.0);
  auto r = read(base + 1, 2);
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[0].u.id == uint64_t(base + 2));
  CHECK(r.entries[1].u.id == uint64_t(base + 3));
  CHECK(read(base + 4).entries.empty());
  CHECK(read(0, 1).entries.at(0).u.id == uint64_t(base));
}

TEST_CASE_FIXTURE(cluster_fixture, "a blocking read returns when an append "
                                   "happens, or empty when it times out") {
  auto l = lease("n", 0);
  auto t0 = std::chrono::steady_clock::now();
  auto timed_out = read(0, 10, 300ms);
  CHECK(timed_out.failure == log_failure::none);
  CHECK(timed_out.entries.empty());
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  auto p = std::make_shared<std::promise<read_reply>>();
  auto f = p->get_future();
  reader->read(0, 10, 20s, [p](read_reply r) {
    p->set_value(std::move(r));
  });
  // Not answered while nothing is appended.
  CHECK(f.wait_for(300ms) == std::future_status::timeout);
  t0 = std::chrono::steady_clock::now();
  append("n", l.token, base, 7.0);
  REQUIRE(f.wait_for(patience) == std::future_status::ready);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  auto r = f.get();
  CHECK(r.failure == log_failure::none);
  REQUIRE(r.entries.size() == 1);
  CHECK(r.entries[0].u.price == 7.0);
}

TEST_CASE_FIXTURE(cluster_fixture, "pipelined appends keep their order and "
                                   "each callback runs once") {
  auto l = lease("n", 0);
  constexpr int n = 50;
  std::vector<std::future<append_reply>> fs;
  for (int i = 0; i < n; ++i) {
    auto p = std::make_shared<std::promise<append_reply>>();
    fs.push_back(p->get_future());
    log->append("n", l.token, update{0, base, double(i + 1)}, 0, 1000, 24h,
                [p](append_reply r) {
                  p->set_value(std::move(r));
                });
  }
  for (int i = 0; i < n; ++i) {
    REQUIRE(fs[i].wait_for(patience) == std::future_status::ready);
    CHECK(fs[i].get().id == uint64_t(base + i));
  }
  auto r = read(0);
  REQUIRE(r.entries.size() == n);
  CHECK(r.entries[n - 1].u.price == double(n));
}

TEST_CASE_FIXTURE(cluster_fixture, "hand-written malformed entries are "
                                   "skipped and counted") {
  auto l = lease("n", 0);
  append("n", l.token, base, 1.0);
  auto id = [](int64_t i) {
    return std::to_string(i) + "-0";
  };
  cmd({"XADD", "t:log", id(base + 1), "ts", "1", "prev", "0", "at", "1"});
  cmd({"XADD", "t:log", id(base + 2), "ts", "1", "price", "nan", "prev", "0",
       "at", "1"});
  cmd({"XADD", "t:log", std::to_string(base + 3) + "-5", "ts", "1", "price",
       "1", "prev", "0", "at", "1"});
  auto next = append("n", l.token, base, 2.0);
  CHECK(next.id == uint64_t(base + 4));
  auto r = read(0);
  CHECK(r.failure == log_failure::none);
  CHECK(r.malformed == 3);
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[0].u.id == uint64_t(base));
  CHECK(r.entries[1].u.id == uint64_t(base + 4));
  // Its prev names the malformed entry: the reader sees the hole.
  CHECK(r.entries[1].prev == uint64_t(base + 3));
}

TEST_CASE_FIXTURE(cluster_fixture, "a foreign value under a key is a server "
                                   "error, not a crash") {
  cmd({"SET", "t:log", "not a stream"});
  auto r = read(0);
  CHECK(r.failure == log_failure::server);
  CHECK(r.error.find("WRONGTYPE") != std::string::npos);
  cmd({"SET", "t:lease", "garbage"});
  CHECK(lease("n", 0).failure == log_failure::server);
}

TEST_CASE_FIXTURE(cluster_fixture, "ids up to 2^53 - 1 are exact in the "
                                   "script; past it the append fails") {
  // 16 digits: Lua's tostring would print 9.007199254741e+15 here.
  constexpr uint64_t big = 9007199254740990; // 2^53 - 2
  auto l = lease("n", 0);
  CHECK(append("n", l.token, base, 1.0, big).id == big);
  CHECK(append("n", l.token, base, 1.0).id == big + 1);
  auto r = read(big - 1);
  REQUIRE(r.entries.size() == 2);
  CHECK(r.entries[1].u.id == big + 1);
  CHECK(r.entries[1].prev == big);
  auto past = append("n", l.token, base, 1.0);
  CHECK(past.failure == log_failure::server);
  CHECK(past.error.find("2^53") != std::string::npos);
  CHECK(cmd({"XLEN", "t:log"}).integer == 2);
}

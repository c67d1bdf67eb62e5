// The connection's failure handling against a real redis-server: AUTH,
// SELECT, a flushed script cache, restarts, a killed and a stopped
// (SIGSTOP) server, and stop().

#include "fixture.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

using namespace btcstream;
using namespace btcstream::test;
using namespace std::chrono_literals;

namespace {

constexpr int64_t base = 1700000000000;
const std::string password = "pw-s3cret-42";

// Calls f until it stops failing with `connect` (at most 3 times): the
// first call after a restart may still meet the old, dead connection.
template<class F>
auto until_connected(F f) {
  auto r = f();
  for (int i = 0; i < 2 && r.failure == log_failure::connect; ++i)
    r = f();
  return r;
}

} // namespace

TEST_CASE("AUTH with the right password works; a wrong one fails with "
          "connect and never shows a password") {
  cluster_fixture fx{password};
  auto l = fx.lease("n", 0);
  CHECK(l.failure == log_failure::none);
  CHECK(l.token >= 1u);
  // ACL form: the default user named explicitly.
  auto acl = fx.make_log("redis://default:" + password
                         + "@127.0.0.1:" + std::to_string(fx.server.port()));
  auto r = await<read_reply>([&](auto cb) {
    acl->read(0, 1, {}, cb);
  });
  CHECK(r.failure == log_failure::none);
  acl->stop();
  const std::string wrong = "wrong-pw-99";
  auto bad = fx.make_log("redis://:" + wrong
                         + "@127.0.0.1:" + std::to_string(fx.server.port()));
  auto f = await<lease_reply>([&](auto cb) {
    bad->lease("n", 0, std::chrono::seconds{1}, cb);
  });
  CHECK(f.failure == log_failure::connect);
  CHECK(f.error.find("AUTH") != std::string::npos);
  CHECK(f.error.find(wrong) == std::string::npos);
  CHECK(f.error.find(password) == std::string::npos);
  bad->stop();
  // No password at all: Redis refuses the command itself (NOAUTH).
  auto anon
      = fx.make_log("redis://127.0.0.1:" + std::to_string(fx.server.port()));
  auto n = await<read_reply>([&](auto cb) {
    anon->read(0, 1, {}, cb);
  });
  CHECK(n.failure == log_failure::server);
  CHECK(n.error.find("NOAUTH") == 0);
  anon->stop();
}

TEST_CASE("SELECT puts the keys in the database of the URL") {
  cluster_fixture fx{{}, 3};
  auto l = fx.lease("n", 0);
  REQUIRE(fx.append("n", l.token, base, 1.0).id == uint64_t(base));
  CHECK(fx.cmd({"XLEN", "t:log"}).integer == 1);
  auto db0 = fx.connect(fx.server.url(0));
  auto r = await<redis_result>([&](auto cb) {
    db0->command({"EXISTS", "t:log"}, std::chrono::seconds{5}, cb);
  });
  CHECK(r.value == redis_value::of_integer(0));
  db0->stop();
}

TEST_CASE_FIXTURE(cluster_fixture, "after SCRIPT FLUSH appends and leases "
                                   "still work (NOSCRIPT, then EVAL)") {
  auto l = lease("n", 0);
  REQUIRE(append("n", l.token, base, 1.0).id == uint64_t(base));
  CHECK(cmd({"SCRIPT", "FLUSH"}).is_string("OK"));
  auto again = lease("n", l.token);
  CHECK(again.failure == log_failure::none);
  CHECK(again.token == l.token);
  CHECK(cmd({"SCRIPT", "FLUSH"}).is_string("OK"));
  auto a = append("n", l.token, base, 2.0);
  CHECK(a.failure == log_failure::none);
  CHECK(a.id == uint64_t(base + 1));
  CHECK(cmd({"XLEN", "t:log"}).integer == 2);
}

TEST_CASE_FIXTURE(cluster_fixture, "a Redis restarted from its AOF keeps "
                                   "the log, the lease and the token") {
  auto l = lease("n", 0);
  for (int i = 0; i < 3; ++i)
    append("n", l.token, base + i, 1.0 + i);
  auto before = read(0);
  server.restart(true);
  auto after = until_connected([&] {
    return read(0);
  });
  REQUIRE(after.failure == log_failure::none);
  CHECK(after.entries.size() == 3);
  CHECK(after.entries == before.entries);
  auto again = until_connected([&] {
    return lease("n", l.token);
  });
  CHECK(again.token == l.token);
  CHECK(append("n", l.token, base, 9.0).id == uint64_t(base + 3));
}

TEST_CASE_FIXTURE(cluster_fixture, "a killed Redis fails pending and later "
                                   "calls with connect; after a restart the "
                                   "same objects work again") {
  auto l = lease("n", 0);
  REQUIRE(read(0).failure == log_failure::none);
  auto p = std::make_shared<std::promise<read_reply>>();
  auto f = p->get_future();
  reader->read(0, 10, 20s, [p](read_reply r) {
    p->set_value(std::move(r));
  });
  std::this_thread::sleep_for(200ms);
  server.kill();
  REQUIRE(f.wait_for(patience) == std::future_status::ready);
  CHECK(f.get().failure == log_failure::connect);
  auto down = lease("n", l.token);
  CHECK(down.failure == log_failure::connect);
  CHECK_FALSE(down.error.empty());
  CHECK(append("n", l.token, base, 1.0).failure == log_failure::connect);
  server.start(false);
  // Redis came back empty: a fresh lease, a fresh log.
  auto l2 = lease("n", 0);
  CHECK(l2.failure == log_failure::none);
  CHECK(l2.node == "n");
  auto a = append("n", l2.token, base, 1.0, base + 10);
  CHECK(a.id == uint64_t(base + 10));
  CHECK(read(0).entries.size() == 1);
}

TEST_CASE_FIXTURE(cluster_fixture, "a server that stops answering fails a "
                                   "blocking read with timeout after block "
                                   "+ margin") {
  REQUIRE(read(0).failure == log_failure::none);
  server.pause();
  auto t0 = std::chrono::steady_clock::now();
  auto r = read(0, 10, 500ms);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.failure == log_failure::timeout);
  // Default margin 2 s.
  CHECK(took >= 2400ms);
  CHECK(took < 10s);
  // A command with the default 2 s limit times out too.
  t0 = std::chrono::steady_clock::now();
  CHECK(lease("n", 0).failure == log_failure::timeout);
  CHECK(std::chrono::steady_clock::now() - t0 < 10s);
  server.resume();
  auto ok = until_connected([&] {
    return read(0);
  });
  CHECK(ok.failure == log_failure::none);
}

TEST_CASE_FIXTURE(cluster_fixture, "stop() fails what is pending with "
                                   "connect and later calls at once") {
  REQUIRE(read(0).failure == log_failure::none);
  auto p = std::make_shared<std::promise<read_reply>>();
  auto f = p->get_future();
  reader->read(0, 10, 20s, [p](read_reply r) {
    p->set_value(std::move(r));
  });
  reader->stop();
  REQUIRE(f.wait_for(patience) == std::future_status::ready);
  auto r = f.get();
  CHECK(r.failure == log_failure::connect);
  CHECK(r.error == "stopped");
  bool called = false;
  reader->read(0, 1, {}, [&](read_reply r) {
    called = true;
    CHECK(r.failure == log_failure::connect);
  });
  CHECK(called);
}

TEST_CASE("an unreachable server fails with connect") {
  boost::asio::io_context ioc;
  // A port nobody listens on: bind-and-close picked it, as the fixture does.
  redis_server s;
  auto port = s.port();
  s.kill();
  auto ep = parse_redis_url("redis://127.0.0.1:" + std::to_string(port));
  auto conn = redis_connection::create(ioc, *ep, 1s);
  redis_log log{conn, "t"};
  std::optional<lease_reply> got;
  log.lease("n", 0, 1s, [&](lease_reply r) {
    got = std::move(r);
  });
  ioc.run_for(10s);
  REQUIRE(got);
  CHECK(got->failure == log_failure::connect);
  CHECK(got->error.find("127.0.0.1") != std::string::npos);
}

TEST_CASE("a reply announcing a huge array fails the connection instead of "
          "allocating it") {
  // A hostile server (or path): hiredis 0.14 would allocate 9 GB for the
  // element array of this 14-byte reply before any element arrives.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor{
      ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
  boost::asio::ip::tcp::socket peer{ioc};
  std::string request(256, '\0');
  acceptor.async_accept(peer, [&](boost::system::error_code ec) {
    REQUIRE_FALSE(ec);
    peer.async_read_some(
        boost::asio::buffer(request), [&](boost::system::error_code, size_t) {
          boost::asio::write(
              peer, boost::asio::buffer(std::string{"*1182722110\r\n"}));
        });
  });
  auto ep = parse_redis_url("redis://127.0.0.1:"
                            + std::to_string(acceptor.local_endpoint().port()));
  auto conn = redis_connection::create(ioc, *ep, 2s);
  redis_log log{conn, "t"};
  std::optional<read_reply> got;
  log.read(0, 10, std::nullopt, [&](read_reply r) {
    got = std::move(r);
  });
  ioc.run_for(5s);
  REQUIRE(got);
  CHECK(got->failure == log_failure::protocol);
  CHECK(got->error.find("bad reply") != std::string::npos);
}

// The upstream client against a tiny in-process HTTP server on loopback:
// keep-alive reuse, the immediate retry of a connection the server closed
// while idle, and classified transport failures. Event-driven; every run is
// bounded by io_context::run_for.

#include "upstream/http_client.hpp"

#include <boost/asio.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace btcstream;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// Answers every request with 200 and a small body. After each answer it
/// either keeps the connection or closes it silently (no `Connection:
/// close`), like a server whose keep-alive timeout just expired. With
/// `interim_first`, its very first answer is preceded by a 103.
class tiny_server {
public:
  tiny_server(asio::io_context& ioc, bool close_after_answer,
              bool interim_first = false)
      : acceptor_(ioc, {asio::ip::make_address("127.0.0.1"), 0}),
        close_after_answer_(close_after_answer),
        interim_first_(interim_first) {
    accept();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  int connections = 0;
  int requests = 0;
  std::vector<std::string> heads;

private:
  struct conn {
    explicit conn(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
    asio::streambuf in;
    std::string out;
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec)
        return;
      ++connections;
      auto c = std::make_shared<conn>(std::move(s));
      read(c);
      accept();
    });
  }

  void read(std::shared_ptr<conn> c) {
    asio::async_read_until(
        c->socket, c->in, "\r\n\r\n",
        [this, c](boost::system::error_code ec, size_t n) {
          if (ec)
            return;
          std::string head{asio::buffers_begin(c->in.data()),
                           asio::buffers_begin(c->in.data())
                               + static_cast<std::ptrdiff_t>(n)};
          c->in.consume(n);
          heads.push_back(head);
          ++requests;
          std::string body = R"({"Data":{"BTC-USD":{"VALUE":1.5}},"Err":{}})";
          c->out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: "
                   + std::to_string(body.size()) + "\r\n\r\n" + body;
          if (interim_first_ && requests == 1)
            c->out = "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + c->out;
          asio::async_write(c->socket, asio::buffer(c->out),
                            [this, c](boost::system::error_code ec, size_t) {
                              if (ec)
                                return;
                              if (close_after_answer_)
                                c->socket.close();
                              else
                                read(c);
                            });
        });
  }

  tcp::acceptor acceptor_;
  bool close_after_answer_;
  bool interim_first_;
};

/// Runs one fetch to completion (bounded) and returns its result.
fetch_result fetch_once(asio::io_context& ioc, http_client& client) {
  std::optional<fetch_result> out;
  client.fetch([&](fetch_result r) {
    out = std::move(r);
  });
  ioc.restart();
  for (int i = 0; i < 500 && !out; ++i)
    ioc.run_for(10ms);
  REQUIRE(out);
  return *out;
}

url local(unsigned short port) {
  return *parse_url("http://127.0.0.1:" + std::to_string(port)
                    + "/index/cc/v1/latest/tick?instruments=BTC-USD");
}

} // namespace

TEST_CASE("the client reuses a kept-alive connection") {
  asio::io_context ioc;
  tiny_server server{ioc, false};
  auto client = std::make_shared<http_client>(ioc, local(server.port()),
                                              nullptr, "", 2s);
  for (int i = 0; i < 3; ++i) {
    auto r = fetch_once(ioc, *client);
    CHECK_EQ(r.failure, transport_error::none);
    CHECK_EQ(r.status, 200);
  }
  CHECK_EQ(server.requests, 3);
  CHECK_EQ(server.connections, 1);
  client->stop();
}

TEST_CASE("a kept-alive connection the server closed is retried at once on "
          "a fresh one, and the request succeeds") {
  asio::io_context ioc;
  tiny_server server{ioc, true};
  auto client = std::make_shared<http_client>(ioc, local(server.port()),
                                              nullptr, "", 2s);
  for (int i = 0; i < 3; ++i) {
    auto r = fetch_once(ioc, *client);
    CHECK_EQ(r.failure, transport_error::none);
    CHECK_EQ(r.status, 200);
  }
  CHECK_EQ(server.requests, 3);
  CHECK_EQ(server.connections, 3);
  client->stop();
}

TEST_CASE("a 1xx answer closes the connection: the real answer after it is "
          "not read as the next request's") {
  asio::io_context ioc;
  tiny_server server{ioc, false, true};
  auto client = std::make_shared<http_client>(ioc, local(server.port()),
                                              nullptr, "", 2s);
  auto interim = fetch_once(ioc, *client);
  CHECK_EQ(interim.status, 103); // not a price: an http_error for the policy
  auto next = fetch_once(ioc, *client);
  CHECK_EQ(next.status, 200);
  // A fresh connection, whose 200 answers this request.
  CHECK_EQ(server.connections, 2);
  CHECK_EQ(server.requests, 2);
  client->stop();
}

TEST_CASE("the API key goes in the Authorization header and nowhere else") {
  asio::io_context ioc;
  tiny_server server{ioc, false};
  auto client = std::make_shared<http_client>(ioc, local(server.port()),
                                              nullptr, "s3cr3t-key", 2s);
  fetch_once(ioc, *client);
  REQUIRE_EQ(server.heads.size(), 1u);
  auto& head = server.heads[0];
  CHECK_NE(head.find("\r\nAuthorization: Apikey s3cr3t-key\r\n"),
           std::string::npos);
  CHECK_EQ(head.find("s3cr3t-key"), head.find("Apikey ") + 7);
  CHECK_EQ(head.rfind("GET /index/cc/v1/latest/tick?instruments=BTC-USD "
                      "HTTP/1.1\r\n",
                      0),
           0u);
  client->stop();
}

TEST_CASE("a refused connection is a connect failure") {
  asio::io_context ioc;
  unsigned short port;
  {
    tcp::acceptor a{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    port = a.local_endpoint().port();
  } // closed: nothing listens there now
  auto client
      = std::make_shared<http_client>(ioc, local(port), nullptr, "", 2s);
  auto r = fetch_once(ioc, *client);
  CHECK_EQ(r.failure, transport_error::connect);
  CHECK_EQ(r.status, 0);
  client->stop();
}

TEST_CASE("a server that never answers is a timeout") {
  asio::io_context ioc;
  tcp::acceptor silent{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket held{ioc};
  silent.async_accept(held, [](boost::system::error_code) {});
  auto client = std::make_shared<http_client>(
      ioc, local(silent.local_endpoint().port()), nullptr, "", 200ms);
  auto r = fetch_once(ioc, *client);
  CHECK_EQ(r.failure, transport_error::timeout);
  client->stop();
}

TEST_CASE("a TLS handshake that fails is a tls failure, not a timeout") {
  asio::io_context ioc;
  // A server that speaks plain HTTP at once: the client's handshake reads a
  // record that is not TLS and fails.
  tcp::acceptor plain{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  tcp::socket peer{ioc};
  const std::string reply = "HTTP/1.1 400 Bad Request\r\n\r\n";
  plain.async_accept(peer, [&](boost::system::error_code ec) {
    if (!ec)
      asio::async_write(peer, asio::buffer(reply),
                        [](boost::system::error_code, size_t) {});
  });
  auto u = *parse_url("https://127.0.0.1:"
                      + std::to_string(plain.local_endpoint().port()) + "/x");
  auto client
      = std::make_shared<http_client>(ioc, u, make_tls_context(""), "", 2s);
  auto r = fetch_once(ioc, *client);
  CHECK_EQ(r.failure, transport_error::tls);
  CHECK_EQ(r.error.rfind("tls: ", 0), 0u);
  client->stop();
}

#include "app/probe.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdio>

namespace btcstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

int run_healthcheck(const config& cfg) {
  auto host = cfg.listen_host;
  if (host == "0.0.0.0" || host.empty())
    host = "127.0.0.1";
  else if (host == "::")
    host = "::1";
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, host);
  req.set(http::field::connection, "close");
  http::response<http::string_body> res;
  beast::error_code failure;
  stream.expires_after(std::chrono::seconds{3});
  asio::ip::tcp::endpoint ep{
      asio::ip::make_address(host, failure),
      static_cast<unsigned short>(std::stoul(cfg.listen_port))};
  if (!failure)
    stream.async_connect(ep, [&](beast::error_code ec) {
      if (ec)
        return void(failure = ec);
      http::async_write(stream, req, [&](beast::error_code ec, size_t) {
        if (ec)
          return void(failure = ec);
        http::async_read(stream, buffer, res,
                         [&](beast::error_code ec, size_t) {
                           failure = ec;
                         });
      });
    });
  ioc.run();
  if (failure) {
    std::fprintf(stderr, "btcstream healthcheck: %s\n",
                 failure.message().c_str());
    return 1;
  }
  std::fprintf(stdout, "btcstream healthcheck: %u %s", res.result_int(),
               res.body().c_str());
  return res.result() == http::status::ok ? 0 : 1;
}

} // namespace btcstream

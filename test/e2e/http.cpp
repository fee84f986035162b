#include "http.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace edgehub::e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::optional<HttpResult> http_request(const std::string& method, std::uint16_t port,
                                       const std::string& target,
                                       std::chrono::milliseconds timeout) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout);
  std::optional<HttpResult> result;
  stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code ec) {
    if (ec) return;
    auto req = std::make_shared<http::request<http::empty_body>>(
        http::string_to_verb(method), target, 11);
    req->set(http::field::host, "127.0.0.1");
    req->set(http::field::connection, "close");
    http::async_write(stream, *req, [&, req](beast::error_code wec, std::size_t) {
      if (wec) return;
      auto buffer = std::make_shared<beast::flat_buffer>();
      auto parser = std::make_shared<http::response_parser<http::string_body>>();
      parser->body_limit(boost::none);  // the simulator's state of thousands of nodes
      http::async_read(stream, *buffer, *parser,
                       [&, buffer, parser](beast::error_code rec, std::size_t) {
        if (rec) return;
        auto res = parser->release();
        result = HttpResult{static_cast<int>(res.result_int()), std::move(res.body())};
      });
    });
  });
  io.run();
  return result;
}

}  // namespace edgehub::e2e

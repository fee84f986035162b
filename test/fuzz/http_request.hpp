#pragma once
// One HTTP/1.1 request as the hub's servers read it: Beast's request_parser with the
// server's limits, fed the input in one buffer (the fuzz targets' common first step).

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <edgehub/net/http_server.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::fuzz {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct ParserLimits {
  std::size_t header_bytes = 8 * 1024;  // Beast's default
  std::size_t body_bytes = 1 << 20;
};

// The first request of `bytes` (which then holds what follows it: pipelined requests), or
// nullopt when the parser refuses it (the server answers 400 / 413) or it is incomplete (the
// server waits for more, then times out).
inline std::optional<BeastRequest> parse_request(std::string_view& bytes, ParserLimits limits) {
  boost::beast::http::request_parser<boost::beast::http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.header_bytes));
  parser.body_limit(limits.body_bytes);
  parser.eager(true);
  boost::system::error_code ec;
  while (!bytes.empty() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    if (ec) return std::nullopt;  // need_more included: the input ends inside the request
    if (n == 0) break;
    bytes.remove_prefix(n);
  }
  if (!parser.is_done()) return std::nullopt;
  return parser.release();
}

// HttpRequest::header() (src/net/http_server.cpp, not linked here): case-insensitive, empty
// when absent.
inline std::string header(const net::HttpRequest& request, std::string_view name) {
  const auto it = request.message.find(boost::beast::string_view(name.data(), name.size()));
  return it == request.message.end() ? std::string() : std::string(it->value());
}

// net::HttpServer's view of the request (path and query split as its connection does).
inline net::HttpRequest server_request(BeastRequest message) {
  net::HttpRequest request;
  const auto target = std::string(message.target());
  const auto q = target.find('?');
  request.path = target.substr(0, q);
  request.query = q == std::string::npos ? std::string() : target.substr(q + 1);
  request.message = std::move(message);
  request.peer = "192.0.2.10:40000";
  return request;
}

}  // namespace edgehub::fuzz

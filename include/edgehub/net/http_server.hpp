#pragma once
// A small HTTP/1.1 server (Boost.Beast) for the hub's side ports: /metrics, /healthz,
// /readyz, /debug/* and the KubeEdge certificate service. Plain TCP, or TLS through
// TlsStream. Handlers run on the server's executor and answer through `respond`, which they
// may call later (after work done elsewhere); they must not block. An exception out of a
// handler is caught, logged and answered 500.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <edgehub/net/tls_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgehub::net {

struct HttpRequest {
  boost::beast::http::request<boost::beast::http::string_body> message;
  std::string path;   // target without the query
  std::string query;  // after '?', undecoded
  std::string peer;   // "address:port"
  boost::asio::ip::address peer_address;
  std::string peer_common_name;  // TLS client certificate CN, empty if none
  bool peer_verified = false;    // the client certificate chained to a trusted CA
  std::string peer_serial;       // its serial number, as serial_hex() gives it; empty if none
  // Header value by name (case-insensitive); empty if absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;

  static HttpResponse text(unsigned status, std::string body);
  static HttpResponse json(unsigned status, std::string body);
};

using Respond = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, Respond)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::shared_ptr<TlsContext> tls;  // null: plain HTTP
  std::size_t max_body_bytes = 1 << 20;
  std::chrono::milliseconds handshake_timeout{10'000};  // TLS, from accept
  // A whole request (headers and body) must arrive within this, from the handshake, the
  // accept or the previous answer (an idle keep-alive connection is closed after it).
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds timeout{30'000};  // from a request read to its answer written
  std::size_t max_connections = 1024;
  std::size_t max_connections_per_address = 1024;
  // Beyond max_connections, this many more connections are served only `reserved_paths`
  // (one request each), so that a flood of the port cannot starve the probes.
  std::size_t reserved_connections = 0;
  std::vector<std::string> reserved_paths;
  std::string name = "http";  // for log lines
  // Every refusal before a handler runs, with a fixed reason: connection_limit,
  // address_limit, tls_handshake, timeout, bad_request, body_too_large, reserved_only.
  std::function<void(std::string_view reason)> on_refuse;
};

// Destroy a server only after its executor's io_context has stopped running.
class HttpServer {
 public:
  HttpServer(boost::asio::any_io_executor executor, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `path` matches exactly; a path ending in '/' matches everything below it.
  void handle(std::string path, HttpHandler handler);
  void handle(std::string path, std::function<HttpResponse(const HttpRequest&)> handler);

  // Binds and starts accepting; throws std::runtime_error naming the address on failure.
  void start();
  // Stops accepting and closes open connections.
  void stop();
  std::uint16_t port() const;
  // Handlers that threw (answered 500, logged): bugs, never a reason to end the process.
  std::uint64_t handler_exceptions() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgehub::net

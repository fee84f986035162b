#pragma once

// The HTTP side of the client: connection pool, one request/response exchange, and the
// streamed read of a watch. Private to the kube module.

#include <edgehub/kube/client.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace edgehub::kube {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool reused = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

using Request = http::request<http::string_body>;

struct Client::Impl {
  Impl(net::any_io_executor ex, ClientConfig cfg, ClientOptions opt);

  // Builds a request with the common headers (Host, User-Agent, Accept, Authorization).
  Request make_request(http::verb verb, std::string target, std::string body = {},
                       std::string_view content_type = {}) const;

  // `verb` (a literal) and `resource` label the request for ClientOptions::on_request.
  net::awaitable<Result<Response>> exchange(Request req, Priority priority, std::string_view verb,
                                            std::string resource);
  net::awaitable<Result<void>> stream(Request req, Priority priority,
                                      std::chrono::milliseconds idle_timeout,
                                      const WatchDecoder::Sink& sink, std::string resource);

  net::any_io_executor executor;
  ClientConfig config;
  ClientOptions options;
  std::optional<net::ssl::context> tls_context;
  RateLimiter limiter;
  std::size_t opened = 0;
  std::vector<std::unique_ptr<Connection>> idle;

 private:
  net::awaitable<Result<void>> acquire(Priority priority);
  net::awaitable<Result<Response>> send_with_retry(Request& req);
  void report(std::string_view verb, std::string_view resource, int code, std::string_view error,
              std::chrono::steady_clock::time_point start) const;
  void schedule_poll();
  net::awaitable<Result<std::unique_ptr<Connection>>> connect();
  void release(std::unique_ptr<Connection> conn);
  template <class Stream>
  net::awaitable<Result<Response>> round_trip(Stream& s, Connection& c, Request& req,
                                              bool& retryable, bool& keep_alive);
  template <class Stream>
  net::awaitable<Result<void>> read_stream(Stream& s, Connection& c,
                                           std::chrono::milliseconds idle_timeout,
                                           const WatchDecoder::Sink& sink, bool& keep_alive,
                                           int& status);

  net::steady_timer poll_timer_;
  std::string host_header_;
};

Result<std::unique_ptr<Client::Impl>> make_impl(net::any_io_executor ex, ClientConfig cfg,
                                                ClientOptions opt);

}  // namespace edgehub::kube

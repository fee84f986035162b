#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <edgehub/net/http_server.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "test_pki.hpp"

namespace edgehub::net {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(io_.get_executor(), std::move(options));
    server_->handle("/healthz", [](const HttpRequest&) { return HttpResponse::text(200, "ok\n"); });
    server_->handle("/debug/", [](const HttpRequest& r) {
      return HttpResponse::json(200, R"({"path":")" + r.path + R"(","query":")" + r.query + "\"}");
    });
    server_->handle("/echo", [](const HttpRequest& r) {
      return HttpResponse::text(200, r.header("NodeName") + ":" + r.message.body());
    });
    // Answers later, from a timer, as the certificate service will after signing elsewhere.
    server_->handle("/later", [this](const HttpRequest&, Respond respond) {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(1));
      timer->async_wait([timer, respond](error_code) { respond(HttpResponse::text(202, "done")); });
    });
    server_->handle("/throws", [](const HttpRequest&) -> HttpResponse {
      throw std::runtime_error("a bug in a handler");
    });
    server_->handle("/whoami", [](const HttpRequest& r) {
      return HttpResponse::text(200, r.peer_common_name + (r.peer_verified ? " verified" : ""));
    });
    server_->start();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (server_) server_->stop();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }

  http::response<http::string_body> get(tcp::socket& socket, const std::string& target,
                                        std::string body = {}, bool keep_alive = true) {
    http::request<http::string_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    req.set("NodeName", "edge-1");
    req.body() = std::move(body);
    req.keep_alive(keep_alive);
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }
  tcp::socket connect() {
    tcp::socket socket(client_io_);
    socket.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    return socket;
  }

  asio::io_context io_;
  asio::io_context client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

TEST_F(HttpServerTest, RoutesKeepAliveAndErrors) {
  start();
  auto socket = connect();
  auto res = get(socket, "/healthz");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "ok\n");
  res = get(socket, "/debug/nodes?limit=5");  // same connection
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"path":"/debug/nodes","query":"limit=5"})");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  res = get(socket, "/nope");
  EXPECT_EQ(res.result_int(), 404);
  res = get(socket, "/echo", "csr-bytes");
  EXPECT_EQ(res.body(), "edge-1:csr-bytes");
  res = get(socket, "/later");
  EXPECT_EQ(res.result_int(), 202);
}

// Issue #16: an exception out of a handler on the API thread ended the process.
TEST_F(HttpServerTest, AHandlerThatThrowsIsAnswered500AndTheServerGoesOn) {
  start();
  auto socket = connect();
  auto res = get(socket, "/throws");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(server_->handler_exceptions(), 1u);
  auto again = connect();
  res = get(again, "/healthz");
  EXPECT_EQ(res.result_int(), 200);
}

TEST_F(HttpServerTest, OversizedBodyIsRefused) {
  start({.max_body_bytes = 16});
  auto socket = connect();
  const auto res = get(socket, "/echo", std::string(100, 'x'));
  EXPECT_EQ(res.result_int(), 413);
}

TEST_F(HttpServerTest, GarbageGetsBadRequest) {
  start();
  auto socket = connect();
  asio::write(socket, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 400);
}

TEST_F(HttpServerTest, SlowClientIsCutOffByTheTimeout) {
  start({.request_timeout = std::chrono::milliseconds(50)});
  auto socket = connect();
  asio::write(socket, asio::buffer(std::string("GET /healthz HTTP/1.1\r\n")));  // never finishes
  char byte;
  error_code ec;
  socket.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
}

// Beyond max_connections, the reserved connections serve only the probes: a flood of the
// port cannot keep the kubelet from /healthz.
TEST_F(HttpServerTest, ReservedConnectionsServeOnlyTheirPaths) {
  std::promise<std::string> refusal;
  start({.max_connections = 2,
         .reserved_connections = 2,
         .reserved_paths = {"/healthz"},
         .on_refuse = [&refusal](std::string_view reason) { refusal.set_value(std::string(reason)); }});
  auto a = connect();
  auto b = connect();
  EXPECT_EQ(get(a, "/echo").result_int(), 200);  // both counted before the next ones
  EXPECT_EQ(get(b, "/echo").result_int(), 200);
  auto c = connect();
  const auto refused = get(c, "/echo");
  EXPECT_EQ(refused.result_int(), 503);
  EXPECT_FALSE(refused.keep_alive());
  EXPECT_EQ(refusal.get_future().get(), "reserved_only");
  auto d = connect();
  EXPECT_EQ(get(d, "/healthz").result_int(), 200);
}

TEST_F(HttpServerTest, ConnectionsPerAddressAreCapped) {
  // The retries below may be refused again until the server notices the close: the first
  // refusal is the one this test reads.
  std::promise<std::string> refusal;
  std::atomic<bool> refused{false};
  start({.max_connections_per_address = 2, .on_refuse = [&](std::string_view reason) {
           if (!refused.exchange(true)) refusal.set_value(std::string(reason));
         }});
  auto a = connect();
  auto b = connect();
  EXPECT_EQ(get(a, "/healthz").result_int(), 200);
  EXPECT_EQ(get(b, "/healthz").result_int(), 200);
  auto c = connect();
  char byte;
  error_code ec;
  c.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_EQ(refusal.get_future().get(), "address_limit");
  a.close();
  // Closing one gives its place back (the server notices the close asynchronously).
  for (int attempt = 0;; ++attempt) {
    auto d = connect();
    error_code write_ec;
    http::request<http::string_body> req(http::verb::get, "/healthz", 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(d, req, write_ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(d, buffer, res, write_ec);
    if (!write_ec) {
      EXPECT_EQ(res.result_int(), 200);
      break;
    }
    ASSERT_LT(attempt, 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST_F(HttpServerTest, TlsWithClientCertificate) {
  testing::TestPki pki;
  auto server_ctx = std::make_shared<TlsContext>(pki.server_context(false));
  // Ask for (but do not require) a client certificate, as the certificate service does.
  SSL_CTX_set_verify(server_ctx->native_handle(), SSL_VERIFY_PEER,
                     [](int, X509_STORE_CTX*) { return 1; });
  start({.tls = server_ctx});
  const auto client_ctx = pki.client_context(true);
  TlsStream stream(client_io_.get_executor(), client_ctx);
  stream.socket().connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  stream.set_server_name("127.0.0.1", true);
  std::promise<error_code> handshake;
  stream.async_handshake(HandshakeRole::client,
                         [&](error_code ec, std::size_t) { handshake.set_value(ec); });
  client_io_.run();
  client_io_.restart();
  ASSERT_FALSE(handshake.get_future().get());
  http::request<http::string_body> req(http::verb::get, "/whoami", 11);
  req.set(http::field::host, "127.0.0.1");
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  http::async_write(stream, req, [&](error_code ec, std::size_t) {
    ASSERT_FALSE(ec);
    http::async_read(stream, buffer, res, [](error_code ec2, std::size_t) { ASSERT_FALSE(ec2); });
  });
  client_io_.run();
  EXPECT_EQ(res.body(), "system:node:edge-1 verified");
}

TEST_F(HttpServerTest, BindFailureNamesTheAddress) {
  start();
  HttpServer second(io_.get_executor(), {.port = server_->port(), .name = "metrics"});
  try {
    second.start();
    FAIL() << "bound the same port twice";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics: cannot listen on 127.0.0.1:" +
                                         std::to_string(server_->port())),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace edgehub::net

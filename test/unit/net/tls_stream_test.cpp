#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <optional>

#include "test_pki.hpp"

namespace edgehub::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
namespace websocket = boost::beast::websocket;

// Runs the io_context until both sides finished; a generous bound turns a hang into a failure
// instead of a stuck test (not a synchronisation sleep: run_for returns as soon as work ends).
void run_bounded(asio::io_context& ioc) {
  ioc.run_for(std::chrono::seconds(30));
  EXPECT_TRUE(ioc.stopped()) << "operations still pending after 30 s";
}

class TlsStreamTest : public ::testing::Test {
 protected:
  testing::TestPki pki;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};

  awaitable<TlsStream> accept(const TlsContext& ctx) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    co_return TlsStream(std::move(socket), ctx);
  }
  awaitable<void> connect(TlsStream& stream) {
    co_await stream.socket().async_connect(acceptor.local_endpoint(), use_awaitable);
  }
};

// co_spawn that turns an escaped exception into a test failure.
auto report() {
  return [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      ADD_FAILURE() << "coroutine failed: " << x.what();
    }
  };
}

std::string pattern(std::size_t size, char seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(32 + (seed + i * 7) % 95);  // printable: valid UTF-8
  return s;
}

// The stream keeps io_context's own executor type; an accepted socket with a type-erased one is
// adopted when an io_context stands behind it (accept() above), refused otherwise.
TEST_F(TlsStreamTest, AdoptsOnlySocketsOfAnIoContext) {
  const TlsContext ctx = pki.server_context();
  tcp::socket on_strand(asio::make_strand(ioc));
  EXPECT_THROW(TlsStream(std::move(on_strand), ctx), std::invalid_argument);
  tcp::socket closed(ioc);
  TlsStream adopted(std::move(closed), ctx);
  EXPECT_FALSE(adopted.socket().is_open());
}

TEST_F(TlsStreamTest, EchoesLargeMessagesInBothDirections) {
  const auto server_ctx = pki.server_context();
  const auto client_ctx = pki.client_context();
  const std::string upload = pattern(3 * 1024 * 1024 + 17, 'a');
  std::string echoed(upload.size(), '\0');
  std::string peer_cn;
  bool chain_kept = true;
  bool server_done = false;

  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream = co_await accept(server_ctx);
    co_await stream.async_handshake(HandshakeRole::server, use_awaitable);
    peer_cn = stream.peer_common_name();
    // The server context verifies client certificates without keeping the verified chain.
    chain_kept = SSL_get0_verified_chain(stream.native_handle()) != nullptr;
    std::string buf(64 * 1024, '\0');
    std::size_t total = 0;
    while (total < upload.size()) {
      const std::size_t n = co_await stream.async_read_some(asio::buffer(buf), use_awaitable);
      co_await asio::async_write(stream, asio::buffer(buf.data(), n), use_awaitable);
      total += n;
    }
    co_await stream.async_shutdown(use_awaitable);
    server_done = true;
  }, report());

  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream(ioc.get_executor(), client_ctx);
    co_await connect(stream);
    stream.set_server_name("127.0.0.1", true);
    co_await stream.async_handshake(HandshakeRole::client, use_awaitable);
    // Write and read concurrently: the echo would deadlock on full socket buffers otherwise.
    asio::co_spawn(ioc, [&]() -> awaitable<void> {
      co_await asio::async_write(stream, asio::buffer(upload), use_awaitable);
    }, report());
    co_await asio::async_read(stream, asio::buffer(echoed), use_awaitable);
    error_code ec;
    char extra;
    co_await stream.async_read_some(asio::buffer(&extra, 1),
                                    asio::redirect_error(use_awaitable, ec));
    EXPECT_EQ(ec, asio::error::eof) << ec.message();  // the server's close_notify
  }, report());

  run_bounded(ioc);
  EXPECT_TRUE(server_done);
  EXPECT_EQ(peer_cn, "system:node:edge-1");
  EXPECT_FALSE(chain_kept);
  EXPECT_TRUE(echoed == upload);
}

// Handshake outcome of each side, with a client context and a server context.
struct HandshakeResult {
  error_code server;
  error_code client;  // handshake or, with TLS 1.3, the first read after it
  std::string server_verify_error;
  std::string client_verify_error;
};

HandshakeResult try_handshake(asio::io_context& ioc, tcp::acceptor& acceptor,
                              const TlsContext& server_ctx, const TlsContext& client_ctx) {
  HandshakeResult result;
  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream(co_await acceptor.async_accept(use_awaitable), server_ctx);
    co_await stream.async_handshake(HandshakeRole::server,
                                    asio::redirect_error(use_awaitable, result.server));
    result.server_verify_error = stream.verify_error();
    if (!result.server) {
      char c;  // wait for the client to give up
      error_code ignored;
      co_await stream.async_read_some(asio::buffer(&c, 1), asio::redirect_error(use_awaitable, ignored));
    }
  }, report());
  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream(ioc.get_executor(), client_ctx);
    co_await stream.socket().async_connect(acceptor.local_endpoint(), use_awaitable);
    co_await stream.async_handshake(HandshakeRole::client,
                                    asio::redirect_error(use_awaitable, result.client));
    result.client_verify_error = stream.verify_error();
    if (!result.client) {
      char c;  // TLS 1.3: the server's verdict on our certificate arrives after the handshake
      co_await stream.async_read_some(asio::buffer(&c, 1),
                                      asio::redirect_error(use_awaitable, result.client));
    }
  }, report());
  ioc.run_for(std::chrono::seconds(30));
  EXPECT_TRUE(ioc.stopped());
  return result;
}

TEST_F(TlsStreamTest, ClientWithoutCertificateIsRefused) {
  const auto result =
      try_handshake(ioc, acceptor, pki.server_context(), pki.client_context(false));
  EXPECT_TRUE(result.server);
  EXPECT_NE(result.server.message().find("certificate"), std::string::npos)
      << result.server.message();
  EXPECT_TRUE(result.client);
  EXPECT_EQ(result.client.category(), tls_category()) << result.client.message();
}

TEST_F(TlsStreamTest, ServerFromAnotherCaIsRefused) {
  testing::TestPki other;  // same shapes, a different CA
  const auto result =
      try_handshake(ioc, acceptor, other.server_context(), pki.client_context());
  EXPECT_TRUE(result.client);
  EXPECT_NE(result.client.message().find("certificate verify failed"), std::string::npos)
      << result.client.message();
  EXPECT_FALSE(result.client_verify_error.empty());
  EXPECT_TRUE(result.server);
}

TEST_F(TlsStreamTest, ClientFromAnotherCaIsRefused) {
  testing::TestPki other;
  const auto client_ctx = TlsContext::client({.ca_pem = to_pem(pki.ca.cert.get()),
                                              .cert_chain_pem = to_pem(other.client.cert.get()),
                                              .private_key_pem = to_pem(other.client.key.get())});
  const auto result = try_handshake(ioc, acceptor, pki.server_context(), client_ctx);
  EXPECT_TRUE(result.server);
  EXPECT_FALSE(result.server_verify_error.empty());
  EXPECT_TRUE(result.client);
}

TEST_F(TlsStreamTest, PeerClosingMidMessageIsATruncation) {
  const auto server_ctx = pki.server_context();
  const auto client_ctx = pki.client_context();
  error_code read_ec;
  std::size_t got = 0;
  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream = co_await accept(server_ctx);
    co_await stream.async_handshake(HandshakeRole::server, use_awaitable);
    const std::string half = pattern(50000, 'x');
    co_await asio::async_write(stream, asio::buffer(half), use_awaitable);
    stream.socket().close();  // no close_notify
  }, report());
  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    TlsStream stream(ioc.get_executor(), client_ctx);
    co_await connect(stream);
    co_await stream.async_handshake(HandshakeRole::client, use_awaitable);
    std::string buf(100000, '\0');  // expects twice what is sent
    got = co_await asio::async_read(stream, asio::buffer(buf),
                                    asio::redirect_error(use_awaitable, read_ec));
  }, report());
  run_bounded(ioc);
  EXPECT_EQ(got, 50000u);
  EXPECT_EQ(read_ec, stream_truncated_error()) << read_ec.message();
}

TEST_F(TlsStreamTest, WebSocketRoundTripAndClose) {
  const auto server_ctx = pki.server_context();
  const auto client_ctx = pki.client_context();
  const std::string big = pattern(200000, 'k');
  std::string server_got, client_got, node_header;
  error_code server_end;

  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    websocket::stream<TlsStream> ws(co_await accept(server_ctx));
    co_await ws.next_layer().async_handshake(HandshakeRole::server, use_awaitable);
    boost::beast::http::request<boost::beast::http::empty_body> req;
    boost::beast::flat_buffer buffer;
    co_await boost::beast::http::async_read(ws.next_layer(), buffer, req, use_awaitable);
    node_header = std::string(req["Node_id"]);
    co_await ws.async_accept(req, use_awaitable);
    co_await ws.async_read(buffer, use_awaitable);
    server_got = boost::beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    ws.text(true);
    co_await ws.async_write(asio::buffer(server_got + "!"), use_awaitable);
    co_await ws.async_read(buffer, asio::redirect_error(use_awaitable, server_end));
  }, report());

  asio::co_spawn(ioc, [&]() -> awaitable<void> {
    websocket::stream<TlsStream> ws(ioc.get_executor(), client_ctx);
    co_await ws.next_layer().socket().async_connect(acceptor.local_endpoint(), use_awaitable);
    co_await ws.next_layer().async_handshake(HandshakeRole::client, use_awaitable);
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& r) { r.set("Node_id", "edge-1"); }));
    co_await ws.async_handshake("127.0.0.1", "/p/edge-1/events", use_awaitable);
    ws.text(true);
    co_await ws.async_write(asio::buffer(big), use_awaitable);
    boost::beast::flat_buffer buffer;
    co_await ws.async_read(buffer, use_awaitable);
    client_got = boost::beast::buffers_to_string(buffer.data());
    co_await ws.async_close(websocket::close_code::normal, use_awaitable);
  }, report());

  run_bounded(ioc);
  EXPECT_EQ(node_header, "edge-1");
  EXPECT_EQ(server_got.size(), big.size());
  EXPECT_EQ(server_got.substr(0, 40), big.substr(0, 40));
  EXPECT_TRUE(server_got == big);
  EXPECT_TRUE(client_got == big + "!");
  EXPECT_EQ(server_end, websocket::error::closed) << server_end.message();
}

}  // namespace
}  // namespace edgehub::net

// A server TlsStream that gave OpenSSL's state up after the handshake
// (release_handshake_state) and runs the TLS 1.3 record layer itself (Tls13Records), against
// an OpenSSL client: data both ways, the client's KeyUpdates, close_notify, and records a
// peer must not send.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <functional>
#include <string>

#include "test_pki.hpp"

namespace edgehub::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

std::string pattern(std::size_t size, char seed) {
  std::string s(size, '\0');
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>(seed + i % 23);
  return s;
}

class Tls13RecordsTest : public ::testing::Test {
 protected:
  using Side = std::function<awaitable<void>(TlsStream&)>;

  // Runs `server` on an accepted, handshaken and released stream and `client` on a
  // connected, handshaken OpenSSL one, until both end (bounded: a hang fails the test).
  void run(const TlsContext& client_ctx, Side server, Side client) {
    const auto server_ctx = pki.server_context();
    capture_traffic_secrets(server_ctx.native_handle());
    asio::co_spawn(ioc, [&]() -> awaitable<void> {
      TlsStream stream(co_await acceptor.async_accept(use_awaitable), server_ctx);
      co_await stream.async_handshake(HandshakeRole::server, use_awaitable);
      peer_cn = stream.peer_common_name();
      released = stream.release_handshake_state();
      co_await server(stream);
      server_done = true;
    }, report());
    asio::co_spawn(ioc, [&]() -> awaitable<void> {
      TlsStream stream(ioc.get_executor(), client_ctx);
      co_await stream.socket().async_connect(acceptor.local_endpoint(), use_awaitable);
      co_await stream.async_handshake(HandshakeRole::client, use_awaitable);
      co_await client(stream);
      client_done = true;
    }, report());
    ioc.run_for(std::chrono::seconds(30));
    EXPECT_TRUE(ioc.stopped()) << "operations still pending after 30 s";
    EXPECT_TRUE(server_done);
    EXPECT_TRUE(client_done);
  }

  static std::function<void(std::exception_ptr)> report() {
    return [](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        ADD_FAILURE() << "coroutine failed: " << x.what();
      }
    };
  }

  // What the server's next read ends with while the client does `client`.
  error_code server_read_error(Side client) {
    error_code ec;
    run(
        pki.client_context(),
        [&](TlsStream& s) -> awaitable<void> {
          char c;
          co_await s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(use_awaitable, ec));
        },
        std::move(client));
    return ec;
  }

  // The same after the client wrote `raw` on its socket and waits for the server to give up.
  error_code read_after_raw(const std::string& raw) {
    return server_read_error([&](TlsStream& s) -> awaitable<void> {
      co_await asio::async_write(s.socket(), asio::buffer(raw), use_awaitable);
      char c;
      error_code ignored;
      co_await s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(use_awaitable, ignored));
    });
  }

  testing::TestPki pki;
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  std::string peer_cn;
  bool released = false;
  bool server_done = false;
  bool client_done = false;
};

TEST_F(Tls13RecordsTest, EchoesLargeMessagesAndEndsWithCloseNotify) {
  const std::string upload = pattern(3 * 1024 * 1024 + 17, 'a');
  std::string echoed(upload.size(), '\0');
  error_code client_end;
  bool ssl_freed = false;
  run(
      pki.client_context(),
      [&](TlsStream& s) -> awaitable<void> {
        ssl_freed = s.native_handle() == nullptr && s.handshake_state_released();
        std::string buf(64 * 1024, '\0');
        std::size_t total = 0;
        while (total < upload.size()) {
          const std::size_t n = co_await s.async_read_some(asio::buffer(buf), use_awaitable);
          co_await asio::async_write(s, asio::buffer(buf.data(), n), use_awaitable);
          total += n;
        }
        co_await s.async_shutdown(use_awaitable);
      },
      [&](TlsStream& s) -> awaitable<void> {
        // Write and read at once: the echo would deadlock on full socket buffers otherwise.
        asio::co_spawn(ioc, [&]() -> awaitable<void> {
          co_await asio::async_write(s, asio::buffer(upload), use_awaitable);
        }, report());
        co_await asio::async_read(s, asio::buffer(echoed), use_awaitable);
        char extra;
        co_await s.async_read_some(asio::buffer(&extra, 1),
                                   asio::redirect_error(use_awaitable, client_end));
        co_await s.async_shutdown(use_awaitable);
      });
  EXPECT_TRUE(released);
  EXPECT_TRUE(ssl_freed);
  EXPECT_EQ(peer_cn, "system:node:edge-1");
  EXPECT_TRUE(echoed == upload);
  EXPECT_EQ(client_end, asio::error::eof) << client_end.message();  // our close_notify
}

// The client moves its keys on, asking the server to do the same: the server follows (its
// KeyUpdate goes out before its answer) and both keep understanding each other.
TEST_F(Tls13RecordsTest, FollowsTheClientsKeyUpdates) {
  std::vector<std::string> server_got, client_got;
  run(
      pki.client_context(),
      [&](TlsStream& s) -> awaitable<void> {
        for (int i = 0; i < 4; ++i) {
          std::string buf(64, '\0');
          const std::size_t n = co_await s.async_read_some(asio::buffer(buf), use_awaitable);
          server_got.push_back(buf.substr(0, n));
          const std::string answer = "pong " + std::to_string(i);
          co_await asio::async_write(s, asio::buffer(answer), use_awaitable);
        }
      },
      [&](TlsStream& s) -> awaitable<void> {
        for (int i = 0; i < 4; ++i) {
          const int request = i % 2 == 0 ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED;
          EXPECT_EQ(SSL_key_update(s.native_handle(), request), 1);
          const std::string ping = "ping " + std::to_string(i);
          co_await asio::async_write(s, asio::buffer(ping), use_awaitable);
          std::string buf(6, '\0');
          co_await asio::async_read(s, asio::buffer(buf), use_awaitable);
          client_got.push_back(buf);
        }
      });
  EXPECT_TRUE(released);
  EXPECT_EQ(server_got, (std::vector<std::string>{"ping 0", "ping 1", "ping 2", "ping 3"}));
  EXPECT_EQ(client_got, (std::vector<std::string>{"pong 0", "pong 1", "pong 2", "pong 3"}));
}

TEST_F(Tls13RecordsTest, ATls12ConnectionKeepsOpenSsl) {
  const auto client_ctx = pki.client_context();
  SSL_CTX_set_max_proto_version(client_ctx.native_handle(), TLS1_2_VERSION);
  std::string got(5, '\0');
  run(
      client_ctx,
      [&](TlsStream& s) -> awaitable<void> {
        co_await asio::async_read(s, asio::buffer(got), use_awaitable);
        co_await asio::async_write(s, asio::buffer(got), use_awaitable);
      },
      [&](TlsStream& s) -> awaitable<void> {
        co_await asio::async_write(s, asio::buffer(std::string("hello")), use_awaitable);
        std::string back(5, '\0');
        co_await asio::async_read(s, asio::buffer(back), use_awaitable);
        EXPECT_EQ(back, "hello");
      });
  EXPECT_FALSE(released);
  EXPECT_EQ(got, "hello");
}

TEST_F(Tls13RecordsTest, AForgedRecordFailsAuthentication) {
  std::string forged = {0x17, 0x03, 0x03, 0x00, 0x20};
  forged += pattern(32, 'f');
  const auto ec = read_after_raw(forged);
  EXPECT_TRUE(released);
  EXPECT_STREQ(ec.category().name(), "edgehub.tls13");
  EXPECT_NE(ec.message().find("bad_record_mac"), std::string::npos) << ec.message();
}

TEST_F(Tls13RecordsTest, AFailureIsFinal) {
  std::string forged = {0x17, 0x03, 0x03, 0x00, 0x20};
  forged += pattern(32, 'f');
  error_code first, second;
  run(
      pki.client_context(),
      [&](TlsStream& s) -> awaitable<void> {
        char c;
        co_await s.async_read_some(asio::buffer(&c, 1),
                                   asio::redirect_error(use_awaitable, first));
        co_await s.async_read_some(asio::buffer(&c, 1),
                                   asio::redirect_error(use_awaitable, second));
      },
      [&](TlsStream& s) -> awaitable<void> {
        co_await asio::async_write(s.socket(), asio::buffer(forged), use_awaitable);
        char c;  // the server's fatal alert
        error_code alert;
        co_await s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(use_awaitable, alert));
        EXPECT_NE(alert.message().find("bad record mac"), std::string::npos) << alert.message();
      });
  EXPECT_NE(first.message().find("bad_record_mac"), std::string::npos) << first.message();
  EXPECT_EQ(second, first);
}

TEST_F(Tls13RecordsTest, AZeroLengthRecordIsRefused) {
  const auto ec = read_after_raw(std::string{0x17, 0x03, 0x03, 0x00, 0x00});
  EXPECT_NE(ec.message().find("bad_record_mac"), std::string::npos) << ec.message();
}

// KeyUpdates alone, without data: 32 in a row are taken, then the peer is cut off (it could
// otherwise keep the server's thread busy re-keying).
TEST_F(Tls13RecordsTest, RecordsWithoutDataHaveALimit) {
  const auto ec = server_read_error([&](TlsStream& s) -> awaitable<void> {
    for (int i = 0; i < 40; ++i) {
      EXPECT_EQ(SSL_key_update(s.native_handle(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
      EXPECT_EQ(SSL_do_handshake(s.native_handle()), 1);  // sends the KeyUpdate now
    }
    char c;
    error_code alert;
    co_await s.async_read_some(asio::buffer(&c, 1), asio::redirect_error(use_awaitable, alert));
  });
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
}

TEST_F(Tls13RecordsTest, ARecordOverTheSizeLimitIsRefused) {
  std::string header = {0x17, 0x03, 0x03, 0x42, 0x00};  // 16,896 bytes: over 2^14 + 256
  const auto ec = read_after_raw(header + pattern(64, 'o'));
  EXPECT_NE(ec.message().find("record_overflow"), std::string::npos) << ec.message();
}

TEST_F(Tls13RecordsTest, AnUnprotectedRecordTypeIsRefused) {
  std::string handshake = {0x16, 0x03, 0x03, 0x00, 0x04, 0x18, 0x00, 0x00, 0x00};
  const auto ec = read_after_raw(handshake);
  EXPECT_NE(ec.message().find("unexpected_message"), std::string::npos) << ec.message();
}

TEST_F(Tls13RecordsTest, ATcpCloseMidRecordIsATruncation) {
  const auto ec = server_read_error([&](TlsStream& s) -> awaitable<void> {
    const std::string partial = {0x17, 0x03, 0x03, 0x01, 0x00, 0x01, 0x02};
    co_await asio::async_write(s.socket(), asio::buffer(partial), use_awaitable);
    s.socket().close();
  });
  EXPECT_EQ(ec, stream_truncated_error()) << ec.message();
}

}  // namespace
}  // namespace edgehub::net

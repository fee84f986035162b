// Tls13Records end to end against OpenSSL clients forced to each TLS 1.3 cipher suite: each
// suite alone, all three interleaved on one thread (the thread's cipher contexts are re-keyed
// from one connection to the next, switching ciphers), and the server's own KeyUpdates.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <edgehub/net/tls13_records_seam.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <string>
#include <vector>

#include "test_pki.hpp"

namespace edgehub::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

const std::vector<std::string> kSuites = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                          "TLS_CHACHA20_POLY1305_SHA256"};

std::string message(std::size_t round, char seed) {
  std::string s(1 + (round * 997) % 40000, '\0');  // from 1 byte to several records
  for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(seed + (i + round) % 29);
  return s;
}

// Counts the KeyUpdate messages an OpenSSL client receives.
void count_key_updates(int write_p, int, int content_type, const void* buf, size_t len, SSL*,
                       void* arg) {
  const auto* bytes = static_cast<const unsigned char*>(buf);
  if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
      bytes[0] == SSL3_MT_KEY_UPDATE) {
    ++*static_cast<int*>(arg);
  }
}

// One connection: a released server stream that echoes `rounds` messages, and an OpenSSL
// client restricted to `suite` that sends them and checks each echo.
struct Pair {
  Pair(asio::io_context& ioc, const testing::TestPki& pki, const std::string& suite)
      : ioc(ioc),
        acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0}),
        server_ctx(pki.server_context()),
        client_ctx(pki.client_context()),
        suite(suite) {
    capture_traffic_secrets(server_ctx.native_handle());
    EXPECT_EQ(SSL_CTX_set_ciphersuites(client_ctx.native_handle(), suite.c_str()), 1);
    SSL_CTX_set_msg_callback(client_ctx.native_handle(), count_key_updates);
    SSL_CTX_set_msg_callback_arg(client_ctx.native_handle(), &key_updates_received);
  }

  awaitable<void> serve(std::size_t rounds) {
    TlsStream s(co_await acceptor.async_accept(use_awaitable), server_ctx);
    co_await s.async_handshake(HandshakeRole::server, use_awaitable);
    released = s.release_handshake_state();
    std::vector<char> buf(64 * 1024);
    for (std::size_t r = 0; r < rounds; ++r) {
      const std::size_t size = message(r, 'a').size();
      co_await asio::async_read(s, asio::buffer(buf.data(), size), use_awaitable);
      co_await asio::async_write(s, asio::buffer(buf.data(), size), use_awaitable);
    }
    co_await s.async_shutdown(use_awaitable);
  }

  awaitable<void> call(std::size_t rounds) {
    TlsStream s(ioc.get_executor(), client_ctx);
    co_await s.socket().async_connect(acceptor.local_endpoint(), use_awaitable);
    co_await s.async_handshake(HandshakeRole::client, use_awaitable);
    negotiated = SSL_CIPHER_get_name(SSL_get_current_cipher(s.native_handle()));
    for (std::size_t r = 0; r < rounds; ++r) {
      const std::string sent = message(r, 'a');
      co_await asio::async_write(s, asio::buffer(sent), use_awaitable);
      std::string back(sent.size(), '\0');
      co_await asio::async_read(s, asio::buffer(back), use_awaitable);
      if (back == sent) ++echoed;
    }
    co_await s.async_shutdown(use_awaitable);
  }

  void start(std::size_t rounds) {
    asio::co_spawn(ioc, serve(rounds), [this](std::exception_ptr e) { server_failed = !!e; });
    asio::co_spawn(ioc, call(rounds), [this](std::exception_ptr e) { client_failed = !!e; });
  }

  asio::io_context& ioc;
  tcp::acceptor acceptor;
  TlsContext server_ctx, client_ctx;
  std::string suite, negotiated;
  bool released = false, server_failed = true, client_failed = true;
  std::size_t echoed = 0;
  int key_updates_received = 0;
};

class Tls13SuitesTest : public ::testing::TestWithParam<std::string> {
 protected:
  testing::TestPki pki;
  asio::io_context ioc;
};

INSTANTIATE_TEST_SUITE_P(Suites, Tls13SuitesTest, ::testing::ValuesIn(kSuites));

TEST_P(Tls13SuitesTest, EchoesOverEachSuite) {
  Pair pair(ioc, pki, GetParam());
  pair.start(60);
  ioc.run_for(std::chrono::seconds(60));
  EXPECT_TRUE(ioc.stopped());
  EXPECT_EQ(pair.negotiated, GetParam());
  EXPECT_TRUE(pair.released);
  EXPECT_FALSE(pair.server_failed);
  EXPECT_FALSE(pair.client_failed);
  EXPECT_EQ(pair.echoed, 60u);
}

// The threshold lowered through the seam: the server moves its write key on after every 4
// records, and the OpenSSL client follows each KeyUpdate.
TEST_P(Tls13SuitesTest, TheServerSendsItsOwnKeyUpdates) {
  const auto previous = Tls13RecordsSeam::set_rekey_after(4);
  Pair pair(ioc, pki, GetParam());
  pair.start(60);
  ioc.run_for(std::chrono::seconds(60));
  Tls13RecordsSeam::set_rekey_after(previous);
  EXPECT_TRUE(ioc.stopped());
  EXPECT_TRUE(pair.released);
  EXPECT_FALSE(pair.server_failed);
  EXPECT_FALSE(pair.client_failed);
  EXPECT_EQ(pair.echoed, 60u);
  EXPECT_GE(pair.key_updates_received, 10);  // ≥ 60 echoes of one record or more, 5 a key
}

// Three connections, one per suite, take turns on one io_context thread: every record
// re-keys the thread's contexts for another connection and cipher.
TEST(Tls13SuitesInterleavedTest, SwitchesSuitesOnOneThread) {
  testing::TestPki pki;
  asio::io_context ioc;
  std::vector<std::unique_ptr<Pair>> pairs;
  for (const auto& suite : kSuites) pairs.push_back(std::make_unique<Pair>(ioc, pki, suite));
  for (auto& pair : pairs) pair->start(80);
  ioc.run_for(std::chrono::seconds(60));
  EXPECT_TRUE(ioc.stopped());
  for (const auto& pair : pairs) {
    EXPECT_EQ(pair->negotiated, pair->suite);
    EXPECT_TRUE(pair->released) << pair->suite;
    EXPECT_FALSE(pair->server_failed) << pair->suite;
    EXPECT_FALSE(pair->client_failed) << pair->suite;
    EXPECT_EQ(pair->echoed, 80u) << pair->suite;
  }
}

}  // namespace
}  // namespace edgehub::net

// HTTPS against a loopback TLS server with certificates made in the test: CA verification,
// host name checks, client certificates, insecure-skip-tls-verify.

#include "replay_server.hpp"
#include "sample_files.hpp"
#include "test_pki.hpp"

#include <edgehub/kube/client.hpp>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include <gtest/gtest.h>

namespace edgehub::kube {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;

struct Pki {
  testing::KeyPair ca = testing::issue("test-ca", nullptr);
  testing::KeyPair server = testing::issue("apiserver", &ca, "IP:127.0.0.1,DNS:localhost");
  testing::KeyPair client = testing::issue("system:node:edge-1", &ca);
  testing::KeyPair other_ca = testing::issue("other-ca", nullptr);
};

// Serves every request with the recorded node; records the client certificate's CN.
class TlsServer {
 public:
  TlsServer(net::io_context& io, const Pki& pki, bool require_client_cert)
      : io_(io), ctx_(ssl::context::tls_server), acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}) {
    ctx_.use_certificate_chain(net::buffer(pki.server.cert_pem));
    ctx_.use_private_key(net::buffer(pki.server.key_pem), ssl::context::pem);
    if (require_client_cert) {
      ctx_.add_certificate_authority(net::buffer(pki.ca.cert_pem));
      ctx_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    net::co_spawn(io_, accept_loop(), net::detached);
  }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  ~TlsServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
  }

  std::vector<std::string> client_cns;
  std::size_t handshake_failures = 0;

 private:
  net::awaitable<void> accept_loop() {
    constexpr auto tok = net::as_tuple(net::use_awaitable);
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(tok);
      if (ec) co_return;
      net::co_spawn(io_, serve(std::move(sock)), net::detached);
    }
  }
  net::awaitable<void> serve(net::ip::tcp::socket sock) {
    constexpr auto tok = net::as_tuple(net::use_awaitable);
    beast::ssl_stream<beast::tcp_stream> s(beast::tcp_stream(std::move(sock)), ctx_);
    beast::get_lowest_layer(s).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await s.async_handshake(ssl::stream_base::server, tok);
    if (hec) {
      ++handshake_failures;
      co_return;
    }
    if (X509* peer = SSL_get1_peer_certificate(s.native_handle())) {
      char cn[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
      client_cns.emplace_back(cn);
      X509_free(peer);
    }
    beast::flat_buffer buf;
    http::request<http::string_body> req;
    auto [rec, rn] = co_await http::async_read(s, buf, req, tok);
    if (rec) co_return;
    http::response<http::string_body> res(http::status::ok, 11);
    res.set(http::field::content_type, "application/json");
    res.body() = testing::load_sample("v1.36.3", "get-node-x").body;
    res.prepare_payload();
    co_await http::async_write(s, res, tok);
    co_await s.async_shutdown(tok);
  }

  net::io_context& io_;
  ssl::context ctx_;
  net::ip::tcp::acceptor acceptor_;
};

ClientConfig https_config(unsigned short port, const std::string& ca_pem, const std::string& host = "127.0.0.1") {
  ClientConfig cfg;
  cfg.origin = "test";
  EXPECT_TRUE(cfg.set_server("https://" + host + ":" + std::to_string(port), "server"));
  cfg.ca_pem = ca_pem;
  return cfg;
}

Result<Object> get_node(net::io_context& io, ClientConfig cfg) {
  auto client = Client::make(io.get_executor(), std::move(cfg));
  if (!client) return client.error();
  return testing::await(io, (*client)->get(resources::nodes(), "", "node-x"));
}

TEST(KubeTls, VerifiedServerAndClientCertificate) {
  net::io_context io;
  Pki pki;
  TlsServer server(io, pki, true);
  auto cfg = https_config(server.port(), pki.ca.cert_pem);
  cfg.client_cert_pem = pki.client.cert_pem;
  cfg.client_key_pem = pki.client.key_pem;
  auto r = get_node(io, cfg);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->meta.name, "node-x");
  EXPECT_EQ(server.client_cns, (std::vector<std::string>{"system:node:edge-1"}));

  // By DNS name too (SNI + host name verification against the DNS SAN).
  auto by_name = https_config(server.port(), pki.ca.cert_pem, "localhost");
  by_name.client_cert_pem = pki.client.cert_pem;
  by_name.client_key_pem = pki.client.key_pem;
  auto r2 = get_node(io, by_name);
  EXPECT_TRUE(r2) << r2.error().describe();
}

TEST(KubeTls, UnknownCaIsTlsFailure) {
  net::io_context io;
  Pki pki;
  TlsServer server(io, pki, false);
  auto r = get_node(io, https_config(server.port(), pki.other_ca.cert_pem));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::TlsFailure);
  EXPECT_NE(r.error().message.find("certificate verify failed"), std::string::npos) << r.error().message;
}

TEST(KubeTls, HostNameMismatchIsTlsFailure) {
  net::io_context io;
  Pki pki;
  TlsServer server(io, pki, false);
  auto cfg = https_config(server.port(), pki.ca.cert_pem);
  cfg.tls_server_name = "kubernetes.default.svc";
  auto r = get_node(io, cfg);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::TlsFailure) << r.error().describe();
}

TEST(KubeTls, MissingClientCertificateIsRefused) {
  net::io_context io;
  Pki pki;
  TlsServer server(io, pki, true);
  auto r = get_node(io, https_config(server.port(), pki.ca.cert_pem));
  ASSERT_FALSE(r);
  // TLS 1.3 reports the server's refusal after the handshake, on the first read.
  EXPECT_TRUE(r.error().kind == ErrorKind::TlsFailure || r.error().kind == ErrorKind::StreamBroken)
      << r.error().describe();
}

TEST(KubeTls, InsecureSkipVerify) {
  net::io_context io;
  Pki pki;
  TlsServer server(io, pki, false);
  auto cfg = https_config(server.port(), pki.other_ca.cert_pem);
  cfg.insecure_skip_tls_verify = true;
  auto r = get_node(io, cfg);
  EXPECT_TRUE(r) << r.error().describe();
}

}  // namespace
}  // namespace edgehub::kube

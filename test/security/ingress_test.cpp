// Item 12 of issue #16: TLS terminated at an ingress. A real nginx verifies the edges'
// client certificates and forwards the CN in X-Client-Cert-CN, as the tls-at-ingress
// overlay's ingress-nginx does; it reaches the hub over mutual TLS with a certificate of its
// own (hub.proxy.clientCAFile, hub.proxy.clientNames). Whoever else reaches the hub's port —
// a pod of the cluster, an edge dialling it directly — cannot claim any node.
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "edge.hpp"
#include "hubs.hpp"
#include "process.hpp"
#include "programs.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;
using test::eventually;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

class IngressMutualTls : public ::testing::Test {
 protected:
  void SetUp() override {
    nginx_path_ = test::find_program("nginx");
    ASSERT_FALSE(nginx_path_.empty()) << "nginx not found (Debian: nginx-light, scripts/install-deps.sh)";
    auto options = hubs_.options("hub-ingress");
    options.config.hub.io_threads = 1;
    options.config.hub.cert_service.enabled = false;
    options.config.hub.proxy.enabled = true;
    options.config.hub.proxy.client_names = {"ingress-nginx"};
    options.proxy_client_ca_pem = net::to_pem(ingress_ca_.cert.get());
    // The hub's serving certificate, for the name the ingress checks (proxy_ssl_name).
    const auto hub_cert = mint_server("edgehub.edgehub.svc", {});
    options.server_cert_pem = net::to_pem(hub_cert.cert.get());
    options.server_key_pem = net::to_pem(hub_cert.key.get());
    hub_ = &hubs_.start(std::move(options));
    start_nginx();
  }
  void TearDown() override {
    if (nginx_) {
      nginx_->signal(SIGQUIT);
      nginx_->wait(5s);
    }
  }

  net::CertAndKey mint_server(const std::string& dns, std::vector<std::string> ips) {
    return net::mint({.common_name = dns, .usage = net::CertUsage::server, .dns_names = {dns},
                      .ip_addresses = std::move(ips)},
                     {hubs_.ca().cert.get(), hubs_.ca().key.get()});
  }

  // nginx as the overlay's ingress-nginx renders it: TLS for the edges (edge CA, client
  // certificate required), the CN extracted by the overlay's snippet, HTTPS to the hub with
  // the ingress's client certificate and the hub's certificate verified.
  void start_nginx() {
    dir_ = test::fresh_work_dir("ingress-mtls");
    const auto front = mint_server("hub.example.com", {"127.0.0.1"});
    const auto client = net::mint({.common_name = "ingress-nginx", .usage = net::CertUsage::client},
                                  {ingress_ca_.cert.get(), ingress_ca_.key.get()});
    write_file(dir_ / "front.crt", net::to_pem(front.cert.get()));
    write_file(dir_ / "front.key", net::to_pem(front.key.get()));
    write_file(dir_ / "edge-ca.crt", net::to_pem(hubs_.ca().cert.get()));
    write_file(dir_ / "proxy.crt", net::to_pem(client.cert.get()));
    write_file(dir_ / "proxy.key", net::to_pem(client.key.get()));
    port_ = test::free_port();
    const std::string d = dir_.string();
    std::ostringstream c;
    c << "daemon off;\nmaster_process on;\nworker_processes 1;\n"
      << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log notice;\n"
      << "events { worker_connections 256; }\n"
      << "http {\n  access_log off;\n"
      << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
      << "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
      << "  server {\n"
      << "    listen 127.0.0.1:" << port_ << " ssl;\n"
      << "    ssl_certificate " << d << "/front.crt;\n    ssl_certificate_key " << d << "/front.key;\n"
      << "    ssl_client_certificate " << d << "/edge-ca.crt;\n"
      << "    ssl_verify_client on;\n    ssl_verify_depth 1;\n"
      // edgecore's node_id header: ingress-nginx's enable-underscores-in-headers.
      << "    underscores_in_headers on;\n"
      << "    location / {\n"
      // The overlay's configuration-snippet, verbatim.
      << "      set $edgehub_client_cn \"\";\n"
      << "      if ($ssl_client_s_dn ~ \"(^|,)CN=(?<edgehub_cn>[^,]+)\") {\n"
      << "        set $edgehub_client_cn $edgehub_cn;\n      }\n"
      << "      proxy_set_header X-Client-Cert-CN $edgehub_client_cn;\n"
      << "      proxy_pass https://127.0.0.1:" << hub_->edge_port() << ";\n"
      << "      proxy_http_version 1.1;\n"
      << "      proxy_set_header Upgrade $http_upgrade;\n"
      << "      proxy_set_header Connection $connection_upgrade;\n"
      << "      proxy_read_timeout 3600s;\n"
      << "      proxy_ssl_certificate " << d << "/proxy.crt;\n"
      << "      proxy_ssl_certificate_key " << d << "/proxy.key;\n"
      << "      proxy_ssl_trusted_certificate " << d << "/edge-ca.crt;\n"
      << "      proxy_ssl_verify on;\n      proxy_ssl_name edgehub.edgehub.svc;\n"
      << "      proxy_ssl_server_name on;\n"
      << "    }\n  }\n}\n";
    write_file(dir_ / "nginx.conf", c.str());
    nginx_ = std::make_unique<test::Child>(
        std::vector<std::string>{nginx_path_, "-p", d + "/", "-c", d + "/nginx.conf", "-e", d + "/error.log"},
        d + "/nginx.out");
    ASSERT_TRUE(eventually([&] {
      if (!nginx_->running()) return false;
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
      return !ec;
    })) << test::slurp(dir_ / "error.log");
  }

  // A TLS client of `port` presenting `cert` (signed by the edge CA unless said otherwise);
  // the upgrade's status for `node` with `headers` (not 101: refused or no session).
  int upgrade(std::uint16_t port, const net::CertAndKey& cert, const std::string& node,
              std::vector<std::pair<std::string, std::string>> headers, std::string* body = nullptr) {
    boost::asio::io_context io;
    const auto tls = net::TlsContext::client({.ca_pem = net::to_pem(hubs_.ca().cert.get()),
                                              .cert_chain_pem = net::to_pem(cert.cert.get()),
                                              .private_key_pem = net::to_pem(cert.key.get())});
    boost::system::error_code ec;
    // The hub's certificate names edgehub.edgehub.svc, the ingress's 127.0.0.1: chains only.
    auto client = test::tls_edge_client(io, tls, port, ec, false);
    if (ec) return 0;
    return client.upgrade(io, node, body, std::move(headers));
  }
  net::CertAndKey node_cert(const std::string& node) {
    return net::mint_node_client_cert(node, {hubs_.ca().cert.get(), hubs_.ca().key.get()});
  }
  double rejected(const std::string& reason) {
    return test::metric(*hub_, "edgehub_rejected_connections_total{reason=\"" + reason + "\"}");
  }

  test::InProcessHubs hubs_{"ingress-mtls"};
  // The ingress's own CA: not the edge CA, so that no edge certificate is an ingress's.
  net::CertAndKey ingress_ca_ = net::mint({.common_name = "ingress CA", .usage = net::CertUsage::ca});
  Hub* hub_ = nullptr;
  std::string nginx_path_;
  fs::path dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<test::Child> nginx_;
};

// An edge dials the ingress with its certificate: nginx verifies it, the hub verifies nginx,
// and the edge's session owns its node: changes reach it through both TLS hops.
TEST_F(IngressMutualTls, AnEdgeThroughTheIngressGetsItsSessionAndItsPods) {
  test::Edge edge(hubs_.ca(), port_, "edge-1");
  ASSERT_TRUE(eventually([&] { return hubs_.owner("edge-1") == "hub-ingress"; }))
      << test::slurp(dir_ / "error.log");
  hubs_.store().create("pods", "default",
                       json{{"metadata", {{"name", "web"}}},
                            {"spec", {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}});
  const auto insert = edge.inserted_or_resynced("default/pod/web");
  EXPECT_EQ(insert.content_json()["spec"]["nodeName"], "edge-1");
  EXPECT_EQ(hub_->sessions(), 1u);
}

// A forged header through the ingress is replaced by the verified CN: edge-1's certificate
// cannot claim edge-2.
TEST_F(IngressMutualTls, AHeaderForgedThroughTheIngressIsReplaced) {
  std::string body;
  EXPECT_EQ(upgrade(port_, node_cert("edge-1"), "edge-2", {{"X-Client-Cert-CN", "system:node:edge-2"}}, &body),
            403);
  EXPECT_NE(body.find("forwarded identity (X-Client-Cert-CN) \"system:node:edge-1\" does not match "
                      "\"system:node:edge-2\""),
            std::string::npos)
      << body;
  EXPECT_EQ(rejected("identity_mismatch"), 1.0);
  EXPECT_EQ(hub_->sessions(), 0u);
}

// Whoever reaches the hub's port without the ingress's certificate claims nothing: a pod
// speaking plain text with the header, an edge with its own certificate and the header, a
// certificate of the ingress CA with another name.
TEST_F(IngressMutualTls, NobodyButTheIngressMayForwardAnIdentity) {
  const std::vector<std::pair<std::string, std::string>> claim = {{"X-Client-Cert-CN", "system:node:edge-1"}};
  {
    boost::asio::io_context io;
    boost::beast::tcp_stream stream(io);
    stream.connect({boost::asio::ip::make_address("127.0.0.1"), hub_->edge_port()});
    test::EdgeClient<boost::beast::tcp_stream> plain(std::move(stream));
    EXPECT_NE(plain.upgrade(io, "edge-1", nullptr, claim), 101);
  }
  EXPECT_NE(upgrade(hub_->edge_port(), node_cert("edge-1"), "edge-1", claim), 101);
  const auto impostor = net::mint({.common_name = "someone", .usage = net::CertUsage::client},
                                  {ingress_ca_.cert.get(), ingress_ca_.key.get()});
  std::string body;
  EXPECT_NE(upgrade(hub_->edge_port(), impostor, "edge-1", claim, &body), 101);
  EXPECT_TRUE(eventually([&] {
    return rejected("tls_handshake") == 2.0 && rejected("untrusted_proxy") == 1.0;
  })) << rejected("tls_handshake") << " " << rejected("untrusted_proxy");
  EXPECT_EQ(hub_->sessions(), 0u);
  EXPECT_EQ(hubs_.owner("edge-1"), "");
}

}  // namespace
}  // namespace edgehub::hub

// Identity attacks (issue #16, items 4, 5, 11) against a real hub replica and the embedded
// API server on loopback, over real TLS: curl for the certificate service as keadm and
// edgecore use it, WebSocket edges with client certificates for the edge port.
//   - a JWT whose header is {"alg":1} used to end the process (pre-authentication);
//   - certificates for, and connections as, an existing non-edge Node (a control-plane or
//     worker node) used to be accepted; a 53-character name used to get a certificate
//     without CN;
//   - nothing could be revoked: a revoked node now fails at connect and at renewal, and its
//     open session is closed.
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "edge.hpp"
#include "eventually.hpp"
#include "hubs.hpp"
#include "process.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SecurityIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "sec-identity-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ca_ = std::make_shared<pki::CertificateAuthority>(pki::CertificateAuthority::from_pem(
        net::to_pem(hubs_.ca().cert.get()), net::to_pem(hubs_.ca().key.get())));
    std::ofstream(dir_ + "/ca.pem") << ca_->cert_pem();
    net::CertRequest server_request{.common_name = "edgehub", .usage = net::CertUsage::server,
                                    .ip_addresses = {"127.0.0.1"}};
    const auto server = net::mint(server_request, ca_->issuer());
    auto options = hubs_.options("hub-sec");
    options.edge_ca = ca_;
    options.server_cert_pem = net::to_pem(server.cert.get());
    options.server_key_pem = net::to_pem(server.key.get());
    options.config.hub.cert_service.enabled = true;
    options.config.hub.cert_service.listen = {"127.0.0.1", 0};
    options.config.hub.revocation.interval = 200ms;
    hub_ = &hubs_.start(std::move(options));
    url_ = "https://127.0.0.1:" + std::to_string(hub_->cert_service_port());
    // A worker node the kubelet registered: no edge label.
    hubs_.store().create("nodes", "", {{"metadata", {{"name", "worker-1"}}}});
    hubs_.store().create("nodes", "", {{"metadata", {{"name", "edge-1"},
                                                     {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  }

  // curl as edgecore asks /edge.crt: the HTTP status; the body is left in <dir>/out.
  int edge_crt(const std::string& node, const std::string& auth_args,
               const std::string& csr_node = "") {
    const auto subject = "/O=system:nodes/CN=system:node:" + (csr_node.empty() ? node : csr_node);
    const auto key = dir_ + "/req.key";
    const auto csr = dir_ + "/req.csr";
    test::run({"/bin/sh", "-c",
               "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + key +
                   " -subj '" + subject + "' -outform DER -out " + csr + " 2>/dev/null"});
    const auto r = test::run(
        {"/bin/sh", "-c",
         "curl -s --cacert " + dir_ + "/ca.pem -o " + dir_ + "/out -w '%{http_code}' -X GET "
         "--data-binary @" + csr + " -H 'NodeName: " + node + "' " + auth_args + " " + url_ +
             "/edge.crt"});
    return std::atoi(r.out.c_str());
  }
  std::string bearer() const {
    return "-H 'Authorization: Bearer " +
           pki::split_token(pki::create_token(*ca_, 1h))->second + "'";
  }
  // A client certificate of `node` in <dir>/<node>.{crt,key}; its serial.
  std::string client_cert(const std::string& node) {
    const auto cert = net::mint_node_client_cert(node, ca_->issuer());
    std::ofstream(dir_ + "/" + node + ".crt") << net::to_pem(cert.cert.get());
    std::ofstream(dir_ + "/" + node + ".key") << net::to_pem(cert.key.get());
    return net::serial_hex(cert.cert.get());
  }
  std::string cert_args(const std::string& node) const {
    return "--cert " + dir_ + "/" + node + ".crt --key " + dir_ + "/" + node + ".key";
  }

  // Connects to the edge port with a client certificate for `cert_node` and upgrades as
  // `node`; the HTTP status (101: a session), the answer's body in `body`.
  int connect(const std::string& node, const std::string& cert_node, std::string* body = nullptr) {
    const auto cert = net::mint_node_client_cert(cert_node, ca_->issuer());
    return connect_with(node, cert, body);
  }
  int connect_with(const std::string& node, const net::CertAndKey& cert, std::string* body = nullptr) {
    boost::asio::io_context io;
    net::TlsContext tls = net::TlsContext::client({.ca_pem = ca_->cert_pem(),
                                                   .cert_chain_pem = net::to_pem(cert.cert.get()),
                                                   .private_key_pem = net::to_pem(cert.key.get())});
    boost::system::error_code ec;
    auto client = test::tls_edge_client(io, tls, hub_->edge_port(), ec);
    if (ec) return -1;
    return client.upgrade(io, node, body);
  }
  double rejected(const std::string& reason) {
    return test::metric(*hub_, "edgehub_rejected_connections_total{reason=\"" + reason + "\"}");
  }
  void revoke(const json& data) {
    json cm = {{"metadata", {{"name", "edgehub-revoked"}, {"namespace", "edgehub"}}}, {"data", data}};
    try {
      hubs_.store().create("configmaps", "edgehub", cm);
    } catch (const std::exception&) {
      hubs_.store().update("configmaps", "edgehub", "edgehub-revoked", cm);
    }
  }

  // The Node reads the API server answered, by name ("GET /api/v1/nodes/<name>").
  struct NodeReads {
    std::mutex mutex;
    std::vector<std::string> names;
    int count(const std::string& name) {
      const std::lock_guard lock(mutex);
      return static_cast<int>(std::count(names.begin(), names.end(), name));
    }
  };
  static devapi::ServerOptions recording(const std::shared_ptr<NodeReads>& reads) {
    devapi::ServerOptions o;
    o.response_delay = [reads](std::string_view method, std::string_view target) {
      constexpr std::string_view kNodes = "/api/v1/nodes/";
      if (method == "GET" && target.starts_with(kNodes)) {
        const std::lock_guard lock(reads->mutex);
        reads->names.emplace_back(target.substr(kNodes.size()));
      }
      return std::chrono::milliseconds(0);
    };
    return o;
  }

  std::shared_ptr<NodeReads> node_reads_ = std::make_shared<NodeReads>();
  test::InProcessHubs hubs_{"security-identity", recording(node_reads_)};
  std::shared_ptr<pki::CertificateAuthority> ca_;
  Hub* hub_ = nullptr;
  std::string dir_;
  std::string url_;
};

// Issue #16 item 5: `{"alg":1}` made json::value throw out of the handler on the API thread;
// the process ended. Now: 401, and the replica goes on serving.
TEST_F(SecurityIdentity, AJwtWithANumericAlgIsRefusedAndTheReplicaLives) {
  const auto jwt = pki::base64url_encode(R"({"alg":1})") + "." +
                   pki::base64url_encode(R"({"exp":99999999999})") + "." +
                   pki::base64url_encode(std::string(32, 'x'));
  EXPECT_EQ(edge_crt("edge-1", "-H 'Authorization: Bearer " + jwt + "'"), 401);
  EXPECT_NE(slurp(dir_ + "/out").find("signature"), std::string::npos) << slurp(dir_ + "/out");
  // Still alive: the CA download and a genuine join both work.
  EXPECT_EQ(edge_crt("edge-1", bearer()), 200);
  EXPECT_TRUE(hub_->ready());
}

// Item 4: a join token minted certificates for any NodeName, a worker's included.
TEST_F(SecurityIdentity, TheCertServiceRefusesTheNameOfAnExistingNonEdgeNode) {
  EXPECT_EQ(edge_crt("worker-1", bearer()), 403);
  EXPECT_NE(slurp(dir_ + "/out").find("not an edge node"), std::string::npos) << slurp(dir_ + "/out");
  EXPECT_EQ(edge_crt("edge-1", bearer()), 200);
  EXPECT_EQ(edge_crt("edge-new", bearer()), 200) << "a Node that does not exist yet may join";
  // Renewal with a certificate for the worker (say, from an older CA use) is refused too.
  client_cert("worker-1");
  EXPECT_EQ(edge_crt("worker-1", cert_args("worker-1")), 403);
  EXPECT_GE(test::metric(*hub_, "edgehub_cert_service_refusals_total{reason=\"not_edge_node\"}"), 2);
}

// Item 4: a session was accepted for any name the CA signed; it then received that node's
// pods' Secrets and displaced its session.
TEST_F(SecurityIdentity, TheListenerRefusesTheNameOfAnExistingNonEdgeNode) {
  std::string body;
  EXPECT_EQ(connect("worker-1", "worker-1", &body), 403);
  EXPECT_NE(body.find("not an edge node"), std::string::npos) << body;
  EXPECT_EQ(rejected("not_edge_node"), 1);
  EXPECT_EQ(hub_->sessions(), 0u);
  EXPECT_EQ(connect("edge-1", "edge-1"), 101);
}

// A fleet of new nodes reconnecting under a saturated kube.qps used to wait for one GET of
// the Node per connect, past the handshake timeout, and come back for more: the other Nodes
// are now listed and watched, and neither a connect nor a join reads a Node.
TEST_F(SecurityIdentity, ConnectsAndJoinsReadNoNodeOnceTheOtherNodesAreListed) {
  // A join runs the check and opens no session (a session's resync may read its Node).
  EXPECT_EQ(edge_crt("edge-joining", bearer()), 200);
  EXPECT_EQ(node_reads_->count("edge-joining"), 0) << "GET /api/v1/nodes/edge-joining";
  // A worker registered after the hub started is known from the watch.
  hubs_.store().create("nodes", "", {{"metadata", {{"name", "worker-2"}}}});
  EXPECT_TRUE(test::eventually([&] { return edge_crt("worker-2", bearer()) == 403; }));
  const int before = node_reads_->count("worker-2");
  EXPECT_EQ(connect("worker-2", "worker-2"), 403);
  EXPECT_EQ(node_reads_->count("worker-2"), before) << "the listener's check read the Node";
  // An edge label added to a Node makes it an edge node.
  hubs_.store().update("nodes", "", "worker-2",
                       {{"metadata", {{"name", "worker-2"},
                                      {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  EXPECT_TRUE(test::eventually([&] { return connect("worker-2", "worker-2") == 101; }));
}

TEST_F(SecurityIdentity, InvalidAndOverLongNodeNamesAreRefused) {
  const std::string long_name(53, 'a');
  EXPECT_EQ(edge_crt(long_name, bearer()), 400);
  EXPECT_NE(slurp(dir_ + "/out").find("longer than 52"), std::string::npos) << slurp(dir_ + "/out");
  EXPECT_FALSE(fs::exists(dir_ + "/out") && slurp(dir_ + "/out").starts_with("0\x82"))
      << "no certificate (the old service signed one without CN)";
  EXPECT_EQ(edge_crt("Edge_1", bearer(), "Edge_1"), 400);
  EXPECT_EQ(edge_crt(std::string(52, 'b'), bearer()), 200) << "52 characters fit the CN";
  // At the edge port: a certificate whose CN fits, a node_id header that does not.
  EXPECT_EQ(connect(long_name, "edge-1"), 400);
  EXPECT_EQ(connect("Edge_1", "edge-1"), 400);
}

// Item 11: no way to revoke a node. Now a ConfigMap every replica reads: the node's session
// ends within the re-read interval, it cannot connect again nor renew.
TEST_F(SecurityIdentity, ARevokedNodeIsClosedRefusedAtConnectAndAtRenewal) {
  auto edge = std::make_unique<test::Edge>(hubs_.ca(), hub_->edge_port(), "edge-1");
  ASSERT_TRUE(test::eventually([&] { return hub_->sessions() == 1; }));
  client_cert("edge-1");
  EXPECT_EQ(edge_crt("edge-1", cert_args("edge-1")), 200) << "renewal works before revocation";
  revoke({{"nodes", "edge-1"}});
  EXPECT_TRUE(edge->wait_close(20s).has_value()) << "the open session was not closed";
  ASSERT_TRUE(test::eventually([&] { return hub_->sessions() == 0; }));
  std::string body;
  EXPECT_EQ(connect("edge-1", "edge-1", &body), 403);
  EXPECT_NE(body.find("revoked"), std::string::npos) << body;
  EXPECT_GE(rejected("revoked"), 1);
  EXPECT_EQ(edge_crt("edge-1", cert_args("edge-1")), 403) << "self-renewal of a revoked node";
  EXPECT_EQ(edge_crt("edge-1", bearer()), 403) << "a join token does not bring it back";
  EXPECT_GE(test::metric(*hub_, "edgehub_session_closes_total{reason=\"revoked\"}"), 1);
  // Un-revoked: welcome again.
  revoke({{"nodes", ""}});
  EXPECT_TRUE(test::eventually([&] { return connect("edge-1", "edge-1") == 101; }, 20s));
}

// A stolen key: its certificate's serial is revoked; the node re-joins with a new key.
TEST_F(SecurityIdentity, ARevokedSerialIsRefusedAtConnectAndAtRenewal) {
  const auto stolen = net::mint_node_client_cert("edge-1", ca_->issuer());
  const auto serial = net::serial_hex(stolen.cert.get());
  EXPECT_EQ(connect_with("edge-1", stolen), 101);
  std::ofstream(dir_ + "/stolen.crt") << net::to_pem(stolen.cert.get());
  std::ofstream(dir_ + "/stolen.key") << net::to_pem(stolen.key.get());
  revoke({{"serials", serial}});
  std::string body;
  ASSERT_TRUE(test::eventually([&] { return connect_with("edge-1", stolen, &body) == 403; }, 20s));
  EXPECT_NE(body.find("serial"), std::string::npos) << body;
  EXPECT_EQ(edge_crt("edge-1", cert_args("stolen")), 403);
  EXPECT_EQ(connect("edge-1", "edge-1"), 101) << "a new certificate of the node still works";
}

// edgecore registers its Node after connecting: a name no Node has must still connect.
TEST_F(SecurityIdentity, ANodeThatDoesNotExistYetConnectsAndRegisters) {
  test::Edge edge(hubs_.ca(), hub_->edge_port(), "edge-fresh");
  const json node = {{"metadata", {{"name", "edge-fresh"},
                                   {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}};
  auto reply = edge.request("insert", "null/node/edge-fresh", node.dump());
  EXPECT_TRUE(reply.content_json()["Err"].is_null()) << reply.content;
  EXPECT_EQ(hubs_.store().get("nodes", "", "edge-fresh")["metadata"]["name"], "edge-fresh");
  EXPECT_GE(test::metric(*hub_, "edgehub_node_admission_total{result=\"allowed\"}"), 1);
}

}  // namespace
}  // namespace edgehub::hub

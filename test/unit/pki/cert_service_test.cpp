// The certificate service driven by curl, the way edgecore and keadm use it: GET with a DER
// body, bearer token or client certificate, answers in DER.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <edgehub/pki/cert_service.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "process.hpp"

namespace edgehub::pki {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class CertServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "certsvc-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    net::CertRequest server_request{.common_name = "edgehub", .usage = net::CertUsage::server,
                                    .ip_addresses = {"127.0.0.1"}};
    auto server = net::mint(server_request, ca_->issuer());
    std::ofstream(dir_ + "/ca.pem") << ca_->cert_pem();
    service_ = std::make_unique<CertService>(
        io_.get_executor(), ca_,
        CertServiceOptions{.host = "127.0.0.1", .port = 0,
                           .server_cert_pem = net::to_pem(server.cert.get()),
                           .server_key_pem = net::to_pem(server.key.get()),
                           .max_csr_bytes = 8192},
        [](const std::string& node, std::function<void(bool, std::string)> done) {
          done(node == "edge-1", "");
        });
    service_->start();
    thread_ = std::thread([this] { io_.run(); });
    url_ = "https://127.0.0.1:" + std::to_string(service_->port());
  }
  void TearDown() override {
    service_->stop();
    guard_.reset();
    io_.stop();
    thread_.join();
    service_.reset();
  }
  // A CSR as edgecore makes it, DER, in <dir>/<name>.csr with its key in <name>.key.
  std::string csr(const std::string& name, const std::string& subject) {
    const auto r = test::run({"/bin/sh", "-c",
                              "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
                                  dir_ + "/" + name + ".key -subj '" + subject + "' -outform DER -out " +
                                  dir_ + "/" + name + ".csr 2>&1"});
    EXPECT_EQ(r.exit_code, 0) << r.out;
    return dir_ + "/" + name + ".csr";
  }
  // curl's answer: the HTTP status, the body in <out>.
  int curl(const std::string& args, const std::string& out) {
    const auto r = test::run({"/bin/sh", "-c",
                              "curl -s --cacert " + dir_ + "/ca.pem -o " + out + " -w '%{http_code}' " + args});
    return std::atoi(r.out.c_str());
  }
  int get_edge_crt(const std::string& csr_file, const std::string& node, const std::string& extra,
                   const std::string& out) {
    return curl("-X GET --data-binary @" + csr_file + " -H 'NodeName: " + node + "' " + extra + " " +
                    url_ + "/edge.crt",
                out);
  }
  std::string openssl(const std::string& args) {
    return test::run({"/bin/sh", "-c", "openssl " + args + " 2>&1"}).out;
  }

  std::shared_ptr<const CertificateAuthority> ca_ =
      std::make_shared<const CertificateAuthority>(CertificateAuthority::create("edge CA"));
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_{io_.get_executor()};
  std::unique_ptr<CertService> service_;
  std::thread thread_;
  std::string dir_;
  std::string url_;
};

TEST_F(CertServiceTest, CaDownloadMatchesTheTokenHash) {
  ASSERT_EQ(curl("-k " + url_ + "/ca.crt", dir_ + "/ca.der"), 200);
  EXPECT_EQ(slurp(dir_ + "/ca.der"), ca_->cert_der());
  const auto token = create_token(*ca_, 1h);
  const auto sha = test::run({"/bin/sh", "-c", "openssl dgst -sha256 -r " + dir_ + "/ca.der"});
  EXPECT_EQ(sha.out.substr(0, 64), token.substr(0, 64)) << "edgecore pins the CA by this hash";
}

TEST_F(CertServiceTest, JoinWithATokenThenRotateWithTheCertificate) {
  const auto jwt = split_token(create_token(*ca_, 1h))->second;
  const auto request = csr("join", "/C=CN/ST=Zhejiang/L=Hangzhou/O=system:nodes/CN=system:node:edge-1");
  ASSERT_EQ(get_edge_crt(request, "edge-1", "-H 'Authorization: Bearer " + jwt + "'", dir_ + "/edge.der"), 200);
  openssl("x509 -inform DER -in " + dir_ + "/edge.der -out " + dir_ + "/edge.crt");
  EXPECT_NE(openssl("verify -CAfile " + dir_ + "/ca.pem -purpose sslclient " + dir_ + "/edge.crt").find("OK"),
            std::string::npos);
  EXPECT_NE(openssl("x509 -in " + dir_ + "/edge.crt -noout -subject").find("CN = system:node:edge-1"),
            std::string::npos);

  // Rotation: no token, the current certificate as client certificate.
  const auto renew = csr("renew", "/O=system:nodes/CN=system:node:edge-1");
  EXPECT_EQ(get_edge_crt(renew, "edge-1",
                         "--cert " + dir_ + "/edge.crt --key " + dir_ + "/join.key", dir_ + "/new.der"),
            200);
  // …but not for another node, and not without any credential.
  const auto other = csr("other", "/O=system:nodes/CN=system:node:edge-2");
  EXPECT_EQ(get_edge_crt(other, "edge-2",
                         "--cert " + dir_ + "/edge.crt --key " + dir_ + "/join.key", dir_ + "/x.der"),
            401);
  EXPECT_NE(slurp(dir_ + "/x.der").find("does not match NodeName"), std::string::npos);
  EXPECT_EQ(get_edge_crt(other, "edge-2", "", dir_ + "/x.der"), 401);
}

TEST_F(CertServiceTest, RefusesBadTokensAndBadRequests) {
  const auto request = csr("r", "/O=system:nodes/CN=system:node:edge-1");
  const auto expired = split_token(create_token(*ca_, 1h, WallClock::now() - 2h))->second;
  EXPECT_EQ(get_edge_crt(request, "edge-1", "-H 'Authorization: Bearer " + expired + "'", dir_ + "/o"), 401);
  EXPECT_EQ(slurp(dir_ + "/o"), "token expired\n");
  const auto forged = split_token(create_token(CertificateAuthority::create("evil"), 1h))->second;
  EXPECT_EQ(get_edge_crt(request, "edge-1", "-H 'Authorization: Bearer " + forged + "'", dir_ + "/o"), 401);
  const auto jwt = split_token(create_token(*ca_, 1h))->second;
  const auto bearer = "-H 'Authorization: Bearer " + jwt + "'";
  // The CSR is for edge-1, the request says edge-2.
  EXPECT_EQ(get_edge_crt(request, "edge-2", bearer, dir_ + "/o"), 401);
  EXPECT_NE(slurp(dir_ + "/o").find("is not \"system:node:edge-2\""), std::string::npos);
  std::ofstream(dir_ + "/junk") << "not a csr";
  EXPECT_EQ(get_edge_crt(dir_ + "/junk", "edge-1", bearer, dir_ + "/o"), 400);
  std::ofstream(dir_ + "/big") << std::string(20000, 'x');
  EXPECT_EQ(get_edge_crt(dir_ + "/big", "edge-1", bearer, dir_ + "/o"), 413);
  EXPECT_EQ(get_edge_crt(request, "", bearer, dir_ + "/o"), 400);
  EXPECT_EQ(get_edge_crt(request, "edge-1", bearer + " -H 'ExtKeyUsages: [1]'", dir_ + "/o"), 400);
}

TEST_F(CertServiceTest, NodeExistsCheckForKeadm) {
  EXPECT_EQ(curl(url_ + "/node/edge-1", dir_ + "/o"), 200);
  EXPECT_EQ(slurp(dir_ + "/o"), "Node found");
  EXPECT_EQ(curl(url_ + "/node/edge-9", dir_ + "/o"), 404);
  EXPECT_EQ(slurp(dir_ + "/o"), "Node not found");
}

}  // namespace
}  // namespace edgehub::pki

// The certificate service's building blocks, checked against the OpenSSL command line so the
// test does not trust our own code to judge itself.
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "process.hpp"

namespace edgehub::pki {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string sh(const std::string& command) {
  const auto r = test::run({"/bin/sh", "-c", command});
  EXPECT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  return r.out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "pki-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  // A CSR as edgecore makes it (KUBEEDGE-WIRE §5.4), by the openssl CLI, in DER.
  std::string openssl_csr(const std::string& subject, const std::string& key_args =
                                                         "-newkey ec -pkeyopt ec_paramgen_curve:P-256") {
    const auto path = dir_ + "/req.der";
    sh("openssl req -new " + key_args + " -nodes -keyout " + dir_ + "/req.key -subj '" + subject +
       "' -outform DER -out " + path + " 2>/dev/null");
    return slurp(path);
  }
  std::string dir_;
  CertificateAuthority ca_ = CertificateAuthority::create("test CA");
};

TEST_F(PkiTest, CaHashMatchesOpenSsl) {
  std::ofstream(dir_ + "/ca.crt") << ca_.cert_pem();
  const auto out = sh("openssl x509 -in " + dir_ + "/ca.crt -outform DER | openssl dgst -sha256 -r");
  EXPECT_EQ(out.substr(0, 64), ca_.hash_hex());
}

TEST_F(PkiTest, TokenSignatureVerifiesWithOpenSslHmac) {
  const auto token = create_token(ca_, 24h);
  auto parts = split_token(token);
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->first, ca_.hash_hex());
  const auto& jwt = parts->second;
  const auto last = jwt.rfind('.');
  std::string key_hex;
  for (unsigned char c : ca_.key_der()) {
    static constexpr char kHex[] = "0123456789abcdef";
    key_hex += kHex[c >> 4];
    key_hex += kHex[c & 0xF];
  }
  std::ofstream(dir_ + "/input") << jwt.substr(0, last);
  const auto mac = sh("openssl dgst -sha256 -mac HMAC -macopt hexkey:" + key_hex + " -binary " +
                      dir_ + "/input | base64 -w0 | tr '+/' '-_' | tr -d '='");
  EXPECT_EQ(mac, jwt.substr(last + 1));
  // The claims are what KubeEdge puts there: only exp.
  const auto claims = *base64url_decode(jwt.substr(jwt.find('.') + 1, last - jwt.find('.') - 1));
  EXPECT_EQ(claims.find("{\"exp\":"), 0u);
}

TEST_F(PkiTest, TokenVerification) {
  const WallClock::time_point now = std::chrono::floor<std::chrono::seconds>(WallClock::now());
  const auto jwt = split_token(create_token(ca_, 1h, now))->second;
  auto ok = verify_jwt(ca_, jwt, now + 30min);
  ASSERT_TRUE(ok);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*ok - now).count(), 3600);
  EXPECT_EQ(verify_jwt(ca_, jwt, now + 2h).error(), TokenProblem::expired);
  const auto other = CertificateAuthority::create("other CA");
  EXPECT_EQ(verify_jwt(other, jwt, now).error(), TokenProblem::bad_signature);
  std::string forged = jwt;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_jwt(ca_, forged, now).error(), TokenProblem::bad_signature);
  // alg "none" without a MAC: refused by the MAC check, before the header is even read.
  const auto none = base64url_encode(R"({"alg":"none"})") + "." +
                    base64url_encode(R"({"exp":99999999999})") + ".";
  EXPECT_EQ(verify_jwt(ca_, none, now).error(), TokenProblem::bad_signature);
  for (const std::string& bad : std::vector<std::string>{"", "a.b", "a.b.c.d", "!!!.e30.x", jwt.substr(0, jwt.rfind('.'))}) {
    EXPECT_EQ(verify_jwt(ca_, bad, now).error(), TokenProblem::malformed) << bad;
  }
  EXPECT_FALSE(split_token("abc.def"));
}

TEST_F(PkiTest, SignsAnOpenSslCsrAsKubeEdgeDoes) {
  const auto csr = openssl_csr("/C=CN/ST=Zhejiang/L=Hangzhou/O=system:nodes/CN=system:node:edge-1");
  auto der = sign_node_csr(ca_, csr, "edge-1", {.validity = 24h * 365});
  ASSERT_TRUE(der) << der.error().reason;
  std::ofstream(dir_ + "/edge.der", std::ios::binary) << *der;
  std::ofstream(dir_ + "/ca.crt") << ca_.cert_pem();
  sh("openssl x509 -inform DER -in " + dir_ + "/edge.der -out " + dir_ + "/edge.crt");
  EXPECT_NE(sh("openssl verify -CAfile " + dir_ + "/ca.crt -purpose sslclient " + dir_ + "/edge.crt")
                .find("OK"),
            std::string::npos);
  const auto text = sh("openssl x509 -in " + dir_ + "/edge.crt -noout -subject -ext extendedKeyUsage,keyUsage");
  EXPECT_NE(text.find("O = system:nodes, CN = system:node:edge-1"), std::string::npos) << text;
  EXPECT_NE(text.find("TLS Web Client Authentication"), std::string::npos) << text;
  EXPECT_EQ(text.find("Server Authentication"), std::string::npos) << text;
  EXPECT_NE(text.find("Digital Signature, Key Encipherment"), std::string::npos) << text;
  EXPECT_EQ(text.find("Zhejiang"), std::string::npos) << "only CN and O are copied";
  // The key in the certificate is the CSR's key.
  EXPECT_EQ(sh("openssl x509 -in " + dir_ + "/edge.crt -noout -pubkey"),
            sh("openssl pkey -in " + dir_ + "/req.key -pubout"));
}

TEST_F(PkiTest, RefusesCsrsThatDoNotMatchTheNode) {
  const auto other_node = openssl_csr("/O=system:nodes/CN=system:node:edge-2");
  auto r = sign_node_csr(ca_, other_node, "edge-1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 401);
  EXPECT_EQ(r.error().reason,
            "CSR subject CN \"system:node:edge-2\" is not \"system:node:edge-1\"");

  r = sign_node_csr(ca_, openssl_csr("/O=system:masters/CN=system:node:edge-1"), "edge-1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 401);

  r = sign_node_csr(ca_, "not a csr", "edge-1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_EQ(sign_node_csr(ca_, "", "edge-1").error().http_status, 400);
  EXPECT_EQ(sign_node_csr(ca_, other_node, "").error().http_status, 400);

  const auto good = openssl_csr("/O=system:nodes/CN=system:node:edge-1");
  std::string tampered = good;
  tampered[tampered.size() - 5] ^= 0x01;  // inside the signature
  EXPECT_EQ(sign_node_csr(ca_, tampered, "edge-1").error().http_status, 400);

  r = sign_node_csr(ca_, good, "edge-1", {.ext_key_usages = {1}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 400);

  const auto weak = openssl_csr("/O=system:nodes/CN=system:node:edge-1", "-newkey rsa:1024");
  r = sign_node_csr(ca_, weak, "edge-1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, "the CSR's key is too weak");
}

TEST_F(PkiTest, DevPkiIsCreatedOnceAndReissuedForNewNames) {
  auto r = init_dev_pki({.dir = dir_});
  EXPECT_TRUE(r.created_ca);
  EXPECT_TRUE(r.issued_server_cert);
  struct stat st {};
  ASSERT_EQ(::stat(r.ca_key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(r.server_key_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(sh("openssl verify -CAfile " + r.ca_cert_file + " -purpose sslserver " +
               r.server_cert_file)
                .find("OK"),
            std::string::npos);
  const auto sans = sh("openssl x509 -in " + r.server_cert_file + " -noout -ext subjectAltName");
  EXPECT_NE(sans.find("DNS:localhost"), std::string::npos) << sans;
  EXPECT_NE(sans.find("IP Address:127.0.0.1"), std::string::npos) << sans;

  const auto ca_before = slurp(r.ca_cert_file);
  r = init_dev_pki({.dir = dir_});
  EXPECT_FALSE(r.created_ca);
  EXPECT_FALSE(r.issued_server_cert) << "nothing to do the second time";

  r = init_dev_pki({.dir = dir_, .sans = {"hub.example.com", "10.0.0.7"}});
  EXPECT_FALSE(r.created_ca);
  EXPECT_TRUE(r.issued_server_cert);
  EXPECT_EQ(slurp(r.ca_cert_file), ca_before) << "the CA is kept, so edge certs stay valid";
  const auto more = sh("openssl x509 -in " + r.server_cert_file + " -noout -ext subjectAltName");
  EXPECT_NE(more.find("DNS:hub.example.com"), std::string::npos) << more;
  EXPECT_NE(more.find("IP Address:10.0.0.7"), std::string::npos) << more;

  auto loaded = CertificateAuthority::load(r.ca_cert_file, r.ca_key_file);
  EXPECT_EQ(loaded.cert_pem(), ca_before);
}

TEST_F(PkiTest, LoadNamesTheFileAndTheProblem) {
  try {
    CertificateAuthority::load(dir_ + "/missing.crt", dir_ + "/missing.key");
    FAIL();
  } catch (const PkiError& e) {
    EXPECT_EQ(std::string(e.what()), "CA certificate " + dir_ + "/missing.crt: cannot be read");
  }
  const auto other = CertificateAuthority::create("other");
  std::ofstream(dir_ + "/ca.crt") << ca_.cert_pem();
  std::ofstream(dir_ + "/ca.key") << other.key_pem();
  try {
    CertificateAuthority::load(dir_ + "/ca.crt", dir_ + "/ca.key");
    FAIL();
  } catch (const PkiError& e) {
    EXPECT_NE(std::string(e.what()).find("the CA key does not belong to the CA certificate"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace edgehub::pki

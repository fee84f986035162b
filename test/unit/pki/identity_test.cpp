// Regressions of issue #16 in the pki module: JWT verification that never throws and checks
// the MAC first; node names that fit a certificate's CN; the deny list's parsing; key files
// that are never readable by others; bounded validities.
#include <openssl/hmac.h>

#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/deny_list.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "process.hpp"

namespace edgehub::pki {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A JWT with any header and payload, MAC'd with the CA key as the hub's tokens are: what
// only the CA key's holder can make.
std::string signed_jwt(const CertificateAuthority& ca, const std::string& header,
                       const std::string& payload) {
  const auto input = base64url_encode(header) + "." + base64url_encode(payload);
  const auto key = ca.key_der();
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

class IdentityTest : public ::testing::Test {
 protected:
  CertificateAuthority ca_ = CertificateAuthority::create("test CA");
  WallClock::time_point now_ = std::chrono::floor<std::chrono::seconds>(WallClock::now());
};

// The request that ended every replica: {"alg":1} made json::value("alg", "") throw.
TEST_F(IdentityTest, AJwtWithANumericAlgIsRefusedWithoutThrowing) {
  const auto unsigned_jwt = base64url_encode(R"({"alg":1})") + "." +
                            base64url_encode(R"({"exp":99999999999})") + "." +
                            base64url_encode("0123456789abcdef0123456789abcdef");
  auto r = verify_jwt(ca_, unsigned_jwt, now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), TokenProblem::bad_signature) << "the MAC is checked before parsing";
  // Even with a valid MAC (only the CA key's holder could make it) nothing throws.
  r = verify_jwt(ca_, signed_jwt(ca_, R"({"alg":1})", R"({"exp":99999999999})"), now_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), TokenProblem::unsupported_algorithm);
  for (const char* header : {R"({"alg":null})", R"({"alg":["HS256"]})", R"({})",
                                    R"("HS256")", "[1]", "not json", R"({"alg":"HS512"})"}) {
    r = verify_jwt(ca_, signed_jwt(ca_, header, R"({"exp":99999999999})"), now_);
    ASSERT_FALSE(r) << header;
    EXPECT_NE(r.error(), TokenProblem::bad_signature) << header;
  }
}

TEST_F(IdentityTest, AnExpiryMustBeAnIntegerAClockCanHold) {
  const std::string h = R"({"alg":"HS256","typ":"JWT"})";
  for (const std::string& payload :
       {std::string(R"({})"), std::string(R"({"exp":"99999999999"})"), std::string(R"({"exp":1e300})"),
        std::string(R"({"exp":-1e300})"), std::string(R"({"exp":18446744073709551615})"),
        std::string(R"({"exp":null})"), std::string("[]")}) {
    auto r = verify_jwt(ca_, signed_jwt(ca_, h, payload), now_);
    ASSERT_FALSE(r) << payload;
    EXPECT_EQ(r.error(), TokenProblem::malformed) << payload;
  }
  EXPECT_EQ(verify_jwt(ca_, signed_jwt(ca_, h, R"({"exp":1})"), now_).error(), TokenProblem::expired);
  const auto later = std::chrono::duration_cast<std::chrono::seconds>(
                         (now_ + 1h).time_since_epoch()).count();
  EXPECT_TRUE(verify_jwt(ca_, signed_jwt(ca_, h, R"({"exp":)" + std::to_string(later) + "}"), now_));
}

TEST_F(IdentityTest, AnOversizeTokenIsRefusedBeforeAnyWork) {
  const auto big = signed_jwt(ca_, R"({"alg":"HS256"})",
                              R"({"exp":99999999999,"pad":")" + std::string(5000, 'x') + R"("})");
  ASSERT_GT(big.size(), kMaxJwtBytes);
  EXPECT_EQ(verify_jwt(ca_, big, now_).error(), TokenProblem::malformed);
}

TEST(NodeNames, AreDns1123SubdomainsThatFitTheCommonName) {
  for (const std::string& good : {std::string("edge-1"), std::string("a"),
                                  std::string("edge.site-3.example"), std::string("0abc"),
                                  std::string(kMaxNodeNameLength, 'a')}) {
    EXPECT_TRUE(valid_node_name(good)) << good << ": " << node_name_problem(good);
  }
  EXPECT_EQ(kMaxNodeNameLength, 52u);
  for (const std::string& bad :
       {std::string(), std::string(53, 'a'), std::string("Edge-1"), std::string("-edge"),
        std::string("edge-"), std::string(".edge"), std::string("edge..1"), std::string("edge-.x"),
        std::string("edge.-x"), std::string("edge_1"), std::string("edge/1"), std::string("edge 1"),
        std::string("edge\x80"), std::string("a\0b", 3), std::string("edge?x")}) {
    EXPECT_FALSE(valid_node_name(bad)) << bad;
  }
}

// A 53-character node name used to give a certificate without any CN.
TEST(NodeNames, AnOverLongNameGetsNoCertificate) {
  auto ca = CertificateAuthority::create("test CA");
  const std::string name(53, 'n');
  EXPECT_THROW(net::mint_node_client_cert(name, ca.issuer()), net::TlsError);
  auto r = sign_node_csr(ca, "irrelevant", name);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 400);
  EXPECT_NE(r.error().reason.find("longer than 52"), std::string::npos) << r.error().reason;
}

TEST(Serials, MatchWhatOpensslPrintsOnceNormalized) {
  auto ca = CertificateAuthority::create("test CA");
  const auto cert = net::mint_node_client_cert("edge-1", ca.issuer());
  const auto dir = ::testing::TempDir();
  std::ofstream(dir + "/serial.crt") << net::to_pem(cert.cert.get());
  const auto out = test::run({"/bin/sh", "-c", "openssl x509 -noout -serial -in " + dir + "/serial.crt"});
  ASSERT_EQ(out.exit_code, 0);
  // What an operator copies from `openssl x509 -serial` names the same serial: OpenSSL pads
  // to whole octets (a leading 0 one time in 16), the normalized form drops leading zeros.
  ASSERT_TRUE(out.out.starts_with("serial=") && out.out.ends_with("\n")) << out.out;
  const auto printed = out.out.substr(7, out.out.size() - 8);
  EXPECT_EQ(net::serial_hex(cert.cert.get()), net::normalize_serial(printed)) << printed;
  EXPECT_FALSE(net::serial_hex(cert.cert.get()).starts_with("0"));
  EXPECT_EQ(net::normalize_serial("0a:bc:DE"), "ABCDE");
  EXPECT_EQ(net::normalize_serial("xyz"), "");
}

TEST(DenyLists, ParseNamesAndSerialsAndSkipWhatIsNeither) {
  std::size_t skipped = 0;
  const auto entries = DenyList::parse(
      {{"nodes", "edge-1\nedge-2, edge-3 # stolen\n# comment line\nBad_Name"},
       {"serials", "0A:BC:de\n  123abc\nnot-hex"}},
      &skipped);
  EXPECT_EQ(entries.nodes, (std::set<std::string>{"edge-1", "edge-2", "edge-3"}));
  EXPECT_EQ(entries.serials, (std::set<std::string>{"ABCDE", "123ABC"}));
  EXPECT_EQ(skipped, 2u);
  DenyList list;
  list.replace(entries);
  EXPECT_TRUE(list.denies_node("edge-2"));
  EXPECT_FALSE(list.denies_node("edge-4"));
  EXPECT_TRUE(list.denies_serial("abcde"));
  EXPECT_FALSE(list.denies_serial(""));
  EXPECT_EQ(list.reason("edge-9", "123abc"), "certificate serial 123abc is revoked");
  EXPECT_TRUE(DenyList::parse(nlohmann::json::array()).nodes.empty());
  EXPECT_TRUE(DenyList::parse({{"nodes", 7}}).nodes.empty());
}

TEST(KeyFiles, AreNeverReadableByOthersAndNotWrittenThroughLinks) {
  const auto dir = ::testing::TempDir() + "pki-keyfiles";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A link planted where the temporary file goes must not be followed.
  std::ofstream(dir + "/victim") << "untouched";
  fs::create_symlink(dir + "/victim", dir + "/ca.key.tmp");
  const auto old_mask = ::umask(0);  // the old code created the key 0666 first
  auto r = init_dev_pki({.dir = dir});
  ::umask(old_mask);
  struct stat st {};
  ASSERT_EQ(::lstat(r.ca_key_file.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream victim(dir + "/victim");
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(victim), {}), "untouched");
  EXPECT_FALSE(fs::exists(dir + "/ca.key.tmp"));
  // The CA lives ten years (kubeadm's), not a hundred.
  const auto ca = CertificateAuthority::load(r.ca_cert_file, r.ca_key_file);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(ca.cert())), 1);
  EXPECT_GT(days, 365 * 9);
  EXPECT_LE(days, 365 * 10 + 3);
}

TEST(EdgeCertificates, LiveAtMostAYear) {
  auto ca = CertificateAuthority::create("test CA");
  const auto dir = ::testing::TempDir();
  const auto r = test::run({"/bin/sh", "-c",
                            "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                            "-keyout " + dir + "/life.key -subj '/O=system:nodes/CN=system:node:edge-1' "
                            "-outform DER -out " + dir + "/life.csr 2>/dev/null"});
  ASSERT_EQ(r.exit_code, 0);
  std::ifstream in(dir + "/life.csr", std::ios::binary);
  const std::string csr(std::istreambuf_iterator<char>(in), {});
  auto der = sign_node_csr(ca, csr, "edge-1", {.validity = std::chrono::hours(24 * 36500)});
  ASSERT_TRUE(der) << der.error().reason;
  const auto* p = reinterpret_cast<const unsigned char*>(der->data());
  net::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der->size())));
  ASSERT_TRUE(cert);
  int days = 0, seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert.get())), 1);
  EXPECT_LE(days, 365);
}

}  // namespace
}  // namespace edgehub::pki

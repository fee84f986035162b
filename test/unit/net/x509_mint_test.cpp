#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include "test_pki.hpp"

namespace edgehub::net {
namespace {

std::string name_entry(X509* cert, int nid) {
  char buf[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

TEST(X509Mint, NodeClientCertHasKubeEdgeSubjectAndClientAuthEku) {
  testing::TestPki pki;
  auto node = mint_node_client_cert("edge-7", {pki.ca.cert.get(), pki.ca.key.get()});
  X509* cert = node.cert.get();
  EXPECT_EQ(name_entry(cert, NID_commonName), "system:node:edge-7");
  EXPECT_EQ(name_entry(cert, NID_organizationName), "system:nodes");
  EXPECT_EQ(subject_common_name(cert), "system:node:edge-7");
  const uint32_t eku = X509_get_extended_key_usage(cert);
  EXPECT_TRUE(eku & XKU_SSL_CLIENT);
  EXPECT_FALSE(eku & XKU_SSL_SERVER);
  EXPECT_TRUE(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
  EXPECT_EQ(X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0), 1);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert)), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(cert)), 256);
  // Chains to the CA.
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, pki.ca.cert.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  EXPECT_EQ(X509_verify_cert(ctx), 1) << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
}

TEST(X509Mint, PemRoundTrip) {
  testing::TestPki pki;
  const std::string pem = to_pem(pki.client.cert.get());
  auto back = cert_from_pem(pem);
  EXPECT_EQ(X509_cmp(back.get(), pki.client.cert.get()), 0);
  auto key = key_from_pem(to_pem(pki.client.key.get()));
  EXPECT_EQ(EVP_PKEY_eq(key.get(), pki.client.key.get()), 1);
  EXPECT_THROW(cert_from_pem("garbage"), TlsError);
}

TEST(X509Mint, ServerCertHasSansAndServerAuth) {
  testing::TestPki pki;
  X509* cert = pki.server.cert.get();
  EXPECT_TRUE(X509_get_extended_key_usage(cert) & XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_host(cert, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ca(pki.ca.cert.get()), 1);
}

}  // namespace
}  // namespace edgehub::net

namespace edgehub::net {
namespace {

// Issue #16 item 11: X509_NAME_add_entry_by_txt's failure was ignored, so a CN over 64
// characters (a 53-character node name) gave a certificate without any CN.
TEST(X509Mint, AnOverLongCommonNameIsAnErrorNotACertificateWithoutCn) {
  const auto ca = mint({.common_name = "test CA", .usage = CertUsage::ca});
  EXPECT_THROW(mint_node_client_cert(std::string(53, 'n'), {ca.cert.get(), ca.key.get()}), TlsError);
  EXPECT_THROW(mint({.common_name = std::string(65, 'c'), .usage = CertUsage::ca}), TlsError);
  EXPECT_THROW(mint({.common_name = "", .usage = CertUsage::ca}), TlsError);
  const auto fits = mint_node_client_cert(std::string(52, 'n'), {ca.cert.get(), ca.key.get()});
  EXPECT_EQ(subject_common_name(fits.cert.get()), "system:node:" + std::string(52, 'n'));
}

TEST(X509Mint, SerialsArePositiveAndSixteenOctets) {
  const auto ca = mint({.common_name = "test CA", .usage = CertUsage::ca});
  for (int i = 0; i < 32; ++i) {
    const auto c = mint_node_client_cert("edge-1", {ca.cert.get(), ca.key.get()});
    const ASN1_INTEGER* serial = X509_get0_serialNumber(c.cert.get());
    EXPECT_EQ(ASN1_STRING_length(serial), 16);
    EXPECT_EQ(ASN1_STRING_type(serial), V_ASN1_INTEGER) << "not negative";
  }
}

}  // namespace
}  // namespace edgehub::net

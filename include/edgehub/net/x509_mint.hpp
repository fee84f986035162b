#pragma once
// Minting ECDSA P-256 certificates in process (OpenSSL EVP/X509 API), independent of the
// hub's `pki` module: dev PKI, tests and the simulator's per-node client certificates.
//
// Setup-time code: failures throw TlsError.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgehub::net {

struct X509Deleter {
  void operator()(X509* x) const noexcept { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

enum class CertUsage { ca, server, client };

struct CertRequest {
  std::string common_name;
  std::vector<std::string> organizations;
  CertUsage usage = CertUsage::client;
  std::vector<std::string> dns_names;  // SANs (server)
  std::vector<std::string> ip_addresses;
  std::chrono::hours validity{24 * 365};
};

struct CertAndKey {
  X509Ptr cert;
  PkeyPtr key;
};

// Issuer: the CA that signs. For a self-signed CA pass none.
struct Issuer {
  X509* cert = nullptr;
  EVP_PKEY* key = nullptr;
};

PkeyPtr generate_p256_key();
// Signs `key`'s public half as described by `request`, with `issuer` (self-signed when empty).
X509Ptr issue_certificate(const CertRequest& request, EVP_PKEY* key, Issuer issuer = {});
// Key + certificate in one step.
CertAndKey mint(const CertRequest& request, Issuer issuer = {});

// The edge client certificate KubeEdge expects: CN=system:node:<node>, O=system:nodes,
// EKU clientAuth, KeyUsage digitalSignature|keyEncipherment (KUBEEDGE-WIRE §1.3).
// With `key`, the certificate is issued for that (shared) key instead of a fresh one.
CertAndKey mint_node_client_cert(const std::string& node, Issuer ca, EVP_PKEY* key = nullptr);

std::string to_pem(X509* cert);
std::string to_pem(EVP_PKEY* key);  // PKCS#8, unencrypted
X509Ptr cert_from_pem(const std::string& pem);
PkeyPtr key_from_pem(const std::string& pem);

// Subject common name; "" if none.
std::string subject_common_name(X509* cert);

// A certificate's serial number in upper-case hex without separators or leading zeros, the
// form normalize_serial() gives what `openssl x509 -serial` prints; "" without a certificate.
std::string serial_hex(const X509* cert);
// A serial as an operator may write it (any case, optional ':' separators, leading zeros)
// in the form serial_hex() gives; "" when it is not hex.
std::string normalize_serial(std::string_view text);

}  // namespace edgehub::net

#pragma once
// The edge CA: loads or creates it, signs edge node CSRs as KubeEdge's certificate service
// does (KUBEEDGE-WIRE §5), and lays out the dev PKI (`edgehub certs init`).

#include <boost/system/result.hpp>
#include <chrono>
#include <edgehub/net/x509_mint.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace edgehub::pki {

// Setup-time failures (unreadable files, bad keys); names the file and the reason.
class PkiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Validity of a CA this program creates: ten years, as kubeadm's. Past it, every edge must be
// given the new CA (edgecore pins the CA by the join token's hash).
inline constexpr std::chrono::hours kCaValidity{24 * 365 * 10};
// Longest validity of an edge client certificate (hub.certService.edgeCertDays at most):
// an edge renews before expiry with its current certificate, and a revoked node's
// certificate stops working at the latest by then even on a hub that never learns of it.
inline constexpr std::chrono::hours kMaxEdgeCertValidity{24 * 365};

class CertificateAuthority {
 public:
  static CertificateAuthority load(const std::string& cert_file, const std::string& key_file);
  static CertificateAuthority from_pem(const std::string& cert_pem, const std::string& key_pem);
  // As KubeEdge's casecret holds it: certificate DER, key DER (SEC1, PKCS#1 or PKCS#8).
  static CertificateAuthority from_der(const std::string& cert_der, const std::string& key_der);
  // A new self-signed ECDSA P-256 CA.
  static CertificateAuthority create(const std::string& common_name,
                                     std::chrono::hours validity = kCaValidity);

  X509* cert() const { return cert_.get(); }
  EVP_PKEY* key() const { return key_.get(); }
  net::Issuer issuer() const { return {cert_.get(), key_.get()}; }
  std::string cert_der() const;
  // The key's traditional DER (SEC1 for EC keys, as KubeEdge's casecret holds it); the HMAC
  // key of join tokens.
  std::string key_der() const;
  std::string cert_pem() const { return net::to_pem(cert_.get()); }
  std::string key_pem() const { return net::to_pem(key_.get()); }
  // sha256 of the certificate DER in lower-case hex: the first part of a join token, which
  // edgecore pins the downloaded CA against.
  std::string hash_hex() const;

 private:
  CertificateAuthority(net::X509Ptr cert, net::PkeyPtr key)
      : cert_(std::move(cert)), key_(std::move(key)) {}
  net::X509Ptr cert_;
  net::PkeyPtr key_;
};

struct SignRefusal {
  int http_status;     // as KubeEdge's service answers (§5.3): 400 bad request, 401, 500
  std::string reason;  // for the log line and the plain-text body
};

struct NodeCsrOptions {
  std::chrono::hours validity{24 * 365};
  // Go x509.ExtKeyUsage values from the ExtKeyUsages header; empty means [2] (clientAuth).
  std::vector<int> ext_key_usages;
};

// Signs an edge's CSR (DER) for `node`: `node` must be a valid node name (node_identity.hpp),
// the subject CN=system:node:<node>, O=system:nodes; the CSR's signature must verify; the
// validity is capped at kMaxEdgeCertValidity. Returns the certificate DER. Never throws.
boost::system::result<std::string, SignRefusal> sign_node_csr(const CertificateAuthority& ca,
                                                             std::string_view csr_der,
                                                             const std::string& node,
                                                             const NodeCsrOptions& options = {});

struct DevPkiOptions {
  std::string dir = "certs/dev";
  std::vector<std::string> sans;  // extra DNS names / IP addresses for the server cert
  bool force = false;             // re-issue the server certificate even if it is current
};

struct DevPkiResult {
  bool created_ca = false;
  bool issued_server_cert = false;
  std::string ca_cert_file, ca_key_file, server_cert_file, server_key_file;
};

// Creates <dir>/ca.{crt,key} when missing (an existing CA is kept: edge certificates stay
// valid) and <dir>/server.{crt,key} signed by it, with SANs localhost, 127.0.0.1, ::1 plus
// `sans`. Keys are created 0600 (never readable by others, not even for a moment).
DevPkiResult init_dev_pki(const DevPkiOptions& options);

}  // namespace edgehub::pki

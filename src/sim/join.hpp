#pragma once
// Joining with a token, as edgecore does (KUBEEDGE-WIRE §5.4, §5.5): download the CA from the
// certificate service, pin it by the token's hash, send a CSR with the token's JWT, and later
// rotate with the current certificate instead of the token. Blocking HTTPS calls: they run
// before a worker starts its loop (join) or on the fleet's certificate thread (rotation).

#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <stdexcept>
#include <string>

namespace edgehub::sim {

class JoinError : public std::runtime_error {
 public:
  JoinError(int status, const std::string& what) : std::runtime_error(what), status_(status) {}
  int status() const { return status_; }  // HTTP status; 0 for transport failures

 private:
  int status_;
};

struct CertServiceAddress {
  std::string host;
  std::uint16_t port = 10002;
  std::chrono::milliseconds timeout{10'000};
  bool verify_hostname = false;  // check the service's certificate against `host` (edgecore does)
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// Splits `<sha256 hex of the CA DER>.<JWT>`; throws JoinError when it has not that shape.
std::pair<std::string, std::string> split_join_token(const std::string& token);

// GET /ca.crt (unverified, as edgecore does), checked against `ca_hash`; returns the CA PEM.
std::string fetch_pinned_ca(const CertServiceAddress& service, const std::string& ca_hash);

// A CSR as edgecore makes it: C=CN, ST=Zhejiang, L=Hangzhou, O=system:nodes,
// CN=system:node:<node>, signed with `key`; DER.
std::string make_node_csr(const std::string& node, EVP_PKEY* key);

// GET /edge.crt for `node` with `key`'s CSR: with `jwt` as bearer (join), or presenting
// `current` as client certificate (rotation, `jwt` empty). `tls` verifies the service against
// the pinned CA. Returns the certificate; throws JoinError with the service's answer.
net::X509Ptr request_node_cert(const CertServiceAddress& service, const net::TlsContext& tls,
                               const std::string& node, EVP_PKEY* key, const std::string& jwt,
                               const net::CertAndKey* current);

// What a fleet joined with a token needs for rotation, shared by its workers.
struct CertServiceLink {
  CertServiceAddress address;
  net::TlsContext tls;  // verifies the service against the pinned CA
  boost::asio::thread_pool* pool = nullptr;  // where the blocking calls run
};

}  // namespace edgehub::sim

#pragma once
// The KubeEdge certificate service (KUBEEDGE-WIRE §5.3), on hub.certService.listen (:10002):
//   GET /ca.crt       → the CA certificate, DER
//   GET /edge.crt     → a DER CSR in the body; `Authorization: Bearer <jwt>` + `NodeName`
//                       (join), or no token and the node's current client certificate
//                       (rotation) → the signed certificate, DER. NodeName must be a valid
//                       node name; the identity check (not revoked, not a non-edge Node)
//                       runs after authentication.
//   GET /node/{name}  → 404 "Node not found" / 200 "Node found" (keadm join wants 404)
// Signing runs on its own threads with a cap on concurrent signings, so a fleet re-joining
// at once cannot starve the edge sessions. Token material never reaches a log line.

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <edgehub/net/http_server.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <functional>
#include <memory>
#include <string>

namespace edgehub::pki {

struct CertServiceOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 10002;
  std::string server_cert_pem;  // the hub's server certificate (edges verify it against the CA)
  std::string server_key_pem;
  std::chrono::hours edge_cert_validity{24 * 365};
  std::size_t signing_threads = 1;
  std::size_t max_pending_signings = 256;  // beyond: 503, the edge retries
  std::size_t max_csr_bytes = 64 * 1024;
  // Of the 1,024 connections. All of them by default: through the ingress (SSL passthrough)
  // every edge has the ingress controller's address.
  std::size_t max_connections_per_address = 1024;
  // Each refusal of the HTTP server before a handler runs: connection limits, handshakes,
  // timeouts, unreadable requests (net::HttpServerOptions::on_refuse).
  std::function<void(std::string_view reason)> on_connection_refused;
  // Asked after authentication, before signing: refuses revoked nodes and serials and names
  // of Nodes that are not edge nodes. Null: every valid name is signed.
  IdentityCheck identity_check;
  // Each refused request's fixed label (bad_request, unauthenticated, revoked, not_edge_node,
  // unverifiable, busy, sign_failed, internal_error), for a counter.
  std::function<void(std::string_view label)> on_request_refused;
};

// Answers whether a Node exists; `done(exists, error)` may be called from any thread.
using NodeLookup = std::function<void(const std::string& node,
                                      std::function<void(bool exists, std::string error)> done)>;

class CertService {
 public:
  CertService(boost::asio::any_io_executor executor, std::shared_ptr<const CertificateAuthority> ca,
              CertServiceOptions options, NodeLookup node_lookup);
  ~CertService();
  void start();  // throws std::runtime_error naming the address on failure
  void stop();
  std::uint16_t port() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgehub::pki

#pragma once
// Hub: one edgehub replica. Owns the I/O threads (edge sessions), the API thread (the
// kube::Client, watches, routing, upstream calls), the edge listener and the admin port
// (/metrics, /healthz, /readyz, /debug/nodes).

#include <edgehub/config/config.hpp>
#include <edgehub/kube/config.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/pki/authority.hpp>
#include <memory>
#include <string>

namespace edgehub::hub {

struct HubOptions {
  config::Config config;
  kube::ClientConfig kube;
  // The edge port's TLS (server certificate, edge CA); not used in proxy mode.
  std::shared_ptr<net::TlsContext> edge_tls;
  // Proxy mode with mutual TLS (hub.proxy.clientCAFile): the CA of the ingress's client
  // certificate (PEM). The edge port then serves server_cert_pem / server_key_pem below.
  std::string proxy_client_ca_pem;
  // Served to edges asking for `k8s/ca.crt`: the API server's CA (PEM).
  std::string kube_ca_pem;
  // The certificate service (hub.certService): the edge CA and the hub's server certificate.
  // Null CA: the service is not started.
  std::shared_ptr<const pki::CertificateAuthority> edge_ca;
  std::string server_cert_pem;
  std::string server_key_pem;
};

class Hub {
 public:
  explicit Hub(HubOptions options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // Starts threads, watches, the edge listener and the admin port. Throws std::runtime_error
  // with an operator-readable message when it cannot (port in use, bad API config).
  void start();
  // Drains (SIGTERM): /readyz fails, the listener closes, sessions are handed off in paced
  // batches (node Lease renewed, then close code 1012), NodeSync writes flush, the membership
  // Lease is deleted. Returns when done or at drain.deadline; call stop() afterwards.
  void drain();
  // Stops: not ready, no new connections, sessions closed with a close frame, threads joined.
  void stop();

  std::uint16_t edge_port() const;
  std::uint16_t admin_port() const;
  std::uint16_t cert_service_port() const;
  std::size_t sessions() const;
  bool ready() const;
  metrics::Registry& metrics();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgehub::hub

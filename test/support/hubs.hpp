#pragma once
// An embedded API server and in-process hub replicas against it, with test certificates: the
// edges' CA, the hubs' serving certificate for 127.0.0.1, a kubeconfig for the API server.
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/hub.hpp>
#include <edgehub/kube/config.hpp>
#include <edgehub/net/x509_mint.hpp>

#include <memory>
#include <string>
#include <vector>

namespace edgehub::test {

class Edge;

class InProcessHubs {
 public:
  // Starts the API server; `name` keeps this suite's kubeconfig apart from other suites'.
  explicit InProcessHubs(const std::string& name, devapi::ServerOptions api_options = {});
  ~InProcessHubs();  // the hubs stop before the API server
  InProcessHubs(const InProcessHubs&) = delete;
  InProcessHubs& operator=(const InProcessHubs&) = delete;

  // What every in-process hub has: replica `id` in namespace edgehub, edges and metrics on
  // loopback port 0, this API server, the test CA for edges; the rest as configured by default.
  hub::HubOptions options(const std::string& id) const;
  // Starts a hub and waits until it is ready; throws when it does not become ready.
  hub::Hub& start(hub::HubOptions options);

  devapi::Server& api() { return *api_; }
  devapi::Store& store() { return api_->store(); }
  const net::CertAndKey& ca() const { return ca_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  // The replica that owns `node` by its NodeSync record; empty when none does.
  std::string owner(const std::string& node);
  // An edge of `node` connected to `hub`, once a replica (`owner`, when given) has written the
  // node's NodeSync claim: from then on it receives live changes (those made before come with
  // the claim's resync).
  std::unique_ptr<Edge> owned_edge(hub::Hub& hub, const std::string& node,
                                   const std::string& owner = {});

 private:
  net::CertAndKey ca_;
  net::CertAndKey server_;
  std::string kubeconfig_;
  std::unique_ptr<devapi::Server> api_;
  kube::ClientConfig kube_;
  std::vector<std::unique_ptr<hub::Hub>> hubs_;
};

// The value of a series (name and labels) in a hub's metrics; 0 when it has none.
double metric(hub::Hub& hub, const std::string& series);

}  // namespace edgehub::test

#include "hubs.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>
#include <stdexcept>

#include "edge.hpp"

namespace edgehub::test {

InProcessHubs::InProcessHubs(const std::string& name, devapi::ServerOptions api_options)
    : ca_(net::mint({.common_name = "edge CA", .usage = net::CertUsage::ca})),
      kubeconfig_(::testing::TempDir() + name + "-kubeconfig-" + std::to_string(::getpid())),
      api_(std::make_unique<devapi::Server>(std::move(api_options))) {
  const net::CertRequest server_request{.common_name = "edgehub", .usage = net::CertUsage::server,
                                        .ip_addresses = {"127.0.0.1"}};
  server_ = net::mint(server_request, {ca_.cert.get(), ca_.key.get()});
  api_->start();
  api_->write_kubeconfig(kubeconfig_);
  auto kube = kube::load_kubeconfig(kubeconfig_);
  if (!kube) throw std::runtime_error(kubeconfig_ + ": " + kube.error().describe());
  kube_ = *kube;
}

InProcessHubs::~InProcessHubs() {
  hubs_.clear();
  api_.reset();
}

hub::HubOptions InProcessHubs::options(const std::string& id) const {
  hub::HubOptions options;
  options.config.hub.id = id;
  options.config.hub.namespace_ = "edgehub";
  options.config.hub.listen = {"127.0.0.1", 0};
  options.config.metrics.listen = {"127.0.0.1", 0};
  options.kube = kube_;
  options.edge_tls = std::make_shared<net::TlsContext>(net::TlsContext::server(
      {.cert_chain_pem = net::to_pem(server_.cert.get()),
       .private_key_pem = net::to_pem(server_.key.get()),
       .client_ca_pem = net::to_pem(ca_.cert.get())}));
  return options;
}

hub::Hub& InProcessHubs::start(hub::HubOptions options) {
  const auto id = options.config.hub.id;
  auto hub = std::make_unique<hub::Hub>(std::move(options));
  hub->start();
  hubs_.push_back(std::move(hub));
  auto& started = *hubs_.back();
  if (!eventually([&] { return started.ready(); })) throw std::runtime_error(id + " never became ready");
  return started;
}

std::string InProcessHubs::owner(const std::string& node) {
  try {
    return store().get("nodesyncs.edgehub.io", "", node)["status"].value("owner", "");
  } catch (const std::exception&) {
    return "";
  }
}

std::unique_ptr<Edge> InProcessHubs::owned_edge(hub::Hub& hub, const std::string& node,
                                                const std::string& owner) {
  auto edge = std::make_unique<Edge>(ca_, hub.edge_port(), node);
  EXPECT_TRUE(eventually([&] {
    const auto current = this->owner(node);
    return owner.empty() ? !current.empty() : current == owner;
  })) << "no NodeSync claim of " << node;
  return edge;
}

double metric(hub::Hub& hub, const std::string& series) {
  std::istringstream text(hub.metrics().expose());
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return 0;
}

}  // namespace edgehub::test

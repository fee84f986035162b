#pragma once
// A kube::Client of an embedded API server, for unit tests that run the real client against
// it: the server writes a kubeconfig (named after the test's `tag` and the process) and the
// client is made from it, as the hub makes its own.

#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/config.hpp>
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace edgehub::test {

// `api` must be started. Throws (the test fails with the reason) if the kubeconfig or the
// client cannot be made.
inline std::shared_ptr<kube::Client> api_client(const devapi::Server& api,
                                                boost::asio::io_context& io,
                                                const std::string& tag) {
  const auto kubeconfig =
      ::testing::TempDir() + tag + "-kubeconfig-" + std::to_string(::getpid());
  api.write_kubeconfig(kubeconfig);
  auto config = kube::load_kubeconfig(kubeconfig);
  if (!config) throw std::runtime_error("kubeconfig of the test API: " + config.error().describe());
  auto client = kube::Client::make(io.get_executor(), *config);
  if (!client) throw std::runtime_error("kube client: " + client.error().describe());
  return *client;
}

}  // namespace edgehub::test

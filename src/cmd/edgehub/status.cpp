#include "status.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <edgehub/hub/membership.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/config.hpp>
#include <fmt/format.h>

#include <iostream>

namespace edgehub::cmd {

namespace asio = boost::asio;

int print_status(const StatusOptions& options) {
  auto config = options.kubeconfig.empty() ? kube::load_in_cluster()
                                           : kube::load_kubeconfig(options.kubeconfig, options.context);
  if (!config) {
    std::cerr << "edgehub status: " << config.error().describe() << "\n";
    return 1;
  }
  asio::io_context io;
  auto client = kube::Client::make(io.get_executor(), *config);
  if (!client) {
    std::cerr << "edgehub status: " << client.error().describe() << "\n";
    return 1;
  }
  std::optional<kube::Result<std::vector<hub::ReplicaInfo>>> answer;
  asio::co_spawn(io, hub::list_replicas(**client, options.ns),
                 [&](std::exception_ptr, kube::Result<std::vector<hub::ReplicaInfo>> r) {
                   answer = std::move(r);
                 });
  io.run();
  if (!answer || !*answer) {
    std::cerr << "edgehub status: cannot list membership Leases in namespace " << options.ns
              << ": " << (answer ? answer->error().describe() : "no answer") << "\n";
    return 1;
  }
  const auto& replicas = **answer;
  std::cout << fmt::format("{:<32} {:<22} {:>11} {:<6} {:>9}  {}\n", "REPLICA", "ADDRESS",
                           "CONNECTIONS", "READY", "RENEWED", "HEALTH");
  std::size_t live = 0;
  std::size_t connections = 0;
  bool healthy = true;
  for (const auto& r : replicas) {
    const bool ok = r.live() && r.ready;
    healthy = healthy && ok;
    if (r.live()) {
      ++live;
      connections += r.connections;
    }
    std::cout << fmt::format("{:<32} {:<22} {:>11} {:<6} {:>8}s  {}\n", r.name, r.address,
                             r.connections, r.ready ? "yes" : "no", r.age.count(),
                             !r.live() ? "stale (lease expired: dead or partitioned)"
                             : ok      ? "ok"
                                       : "not ready");
  }
  std::cout << fmt::format("{} replicas live of {}, {} edge connections, {} per live replica\n",
                           live, replicas.size(), connections,
                           live == 0 ? 0 : connections / live);
  return replicas.empty() || !healthy ? 2 : 0;
}

}  // namespace edgehub::cmd

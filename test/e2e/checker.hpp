#pragma once
// The convergence checker: for every node, what the simulator holds (pods, configmaps,
// secrets, its Node, devices, device models and the device twin's membership) must equal what
// the API says the node should hold — the pods bound to it at their current resourceVersion
// and uid, the configmaps/secrets those pods reference that exist, the devices bound to it
// and their models — nothing missing, nothing extra. And the ownership checks: no node
// held by two replicas, each held by the replica its NodeSync names as owner, and the
// node's current connection and latest deliveries from that replica.

#include <chrono>
#include <string>
#include <vector>

#include "cluster.hpp"

namespace edgehub::e2e {

struct CheckResult {
  std::vector<std::string> problems;  // the first few, each naming node and object
  std::size_t problem_count = 0;
  std::size_t nodes_diverged = 0;
  std::size_t objects_compared = 0;
  bool ok() const { return problem_count == 0; }
  std::string summary(std::size_t max_lines = 15) const;
};

CheckResult check_convergence(Api& api, const json& fleet_state,
                              const std::vector<std::string>& nodes);
CheckResult check_ownership(Cluster& cluster);

struct Converged {
  bool ok = false;
  std::chrono::milliseconds took{0};
  CheckResult last;
};

// Polls check_convergence until it passes or `limit` passes.
Converged await_convergence(Cluster& cluster, std::chrono::milliseconds limit);
// Polls check_ownership likewise.
Converged await_ownership(Cluster& cluster, std::chrono::milliseconds limit);

}  // namespace edgehub::e2e

#pragma once
// `edgehub status`: the fleet as the replicas' membership Leases describe it.
#include <string>

namespace edgehub::cmd {

struct StatusOptions {
  std::string kubeconfig;  // empty: in-cluster service account
  std::string context;
  std::string ns = "edgehub";
};

// Prints one line per replica; 0 when every replica is live and ready, 2 when some is not,
// 1 when the API cannot be read.
int print_status(const StatusOptions& options);

}  // namespace edgehub::cmd

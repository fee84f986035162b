#pragma once
// The e2e cluster: `edgehub devapi`, N `edgehub` replicas, a real nginx in front of their
// edge ports (stream module, TLS passthrough) and `edgehub-sim` dialing nginx. Every process
// is started by the test on free loopback ports with its own files in a temporary folder,
// and stopped by it.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "api.hpp"
#include "process.hpp"

namespace edgehub::e2e {

using json = nlohmann::json;

struct ClusterOptions {
  std::string name = "e2e";          // temporary folder and log names
  int replicas = 3;                  // started by start()
  int declared_replicas = 0;         // nginx upstreams (>= replicas; more: added later)
  int nodes = 200;                   // simulated edge nodes
  std::string keepalive_timeout = "30s";  // hub.keepaliveTimeout
  double sim_reconnect_delay = 1.0;  // s, the simulator's first reconnect delay
  std::string drain_deadline = "40s";
};

struct Replica {
  std::string id;
  std::uint16_t edge_port = 0;
  std::uint16_t admin_port = 0;
  std::string config_file;
  std::unique_ptr<test::Child> process;
  bool alive() const { return process != nullptr; }
};

class Cluster {
 public:
  static constexpr const char* kNamespace = "e2e";           // the workload's namespace
  static constexpr const char* kHubNamespace = "edgehub-e2e";  // hub.namespace
  static constexpr const char* kNodePrefix = "e2e-node-";

  explicit Cluster(ClusterOptions options);
  ~Cluster();  // stops everything still running; keeps the logs
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // devapi, the replicas (ready), nginx. Throws with the log's path on failure.
  void start_control_plane();
  // The simulator; waits until every node is connected and registered.
  void start_fleet();

  const ClusterOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }
  Api& api() { return *api_; }
  std::vector<Replica>& replicas() { return replicas_; }
  Replica& replica(const std::string& id);
  std::vector<std::string> node_names() const;

  // Replicas.
  void start_replica(std::size_t index);  // waits for /readyz
  void kill_replica(const std::string& id);  // SIGKILL
  // SIGTERM; returns the exit code (nullopt: still running after `limit`).
  std::optional<int> drain_replica(const std::string& id, std::chrono::milliseconds limit);
  // GET /debug/nodes: node → replica for every live replica.
  std::multimap<std::string, std::string> sessions();
  // Counter value of edgehub_session_closes_total{reason=...} on one replica (0 when absent).
  double closes(const std::string& id, const std::string& reason);
  // The value of one series (name with its labels, as /metrics prints it) on a live replica;
  // 0 when it is absent, nullopt when the replica is dead or does not answer.
  std::optional<double> metric(const std::string& id, const std::string& series);

  // devapi.
  void expire_api_history();  // SIGUSR1
  // Writes the simulator's state and every live replica's /debug/nodes (each node in detail)
  // and /metrics into the log folder (after a failure).
  void dump_debug();
  void restart_api();         // SIGTERM (state saved), start again on the same port

  // Simulator.
  json fleet_state();          // GET / on its state port
  bool abandon(const std::string& node);

 private:
  void make_pki();
  void start_api();
  void write_replica_config(Replica& r);
  void write_nginx_config();
  void start_nginx();
  std::string log(const std::string& name) const { return dir_ + "/" + name + ".log"; }

  ClusterOptions options_;
  std::string dir_;
  std::uint16_t api_port_ = 0;
  std::uint16_t nginx_port_ = 0;
  std::uint16_t sim_port_ = 0;
  std::unique_ptr<test::Child> devapi_;
  std::unique_ptr<test::Child> nginx_;
  std::unique_ptr<test::Child> sim_;
  std::unique_ptr<Api> api_;
  std::vector<Replica> replicas_;
};

// Polls `pred` until true or `limit` passes (no event to wait on: other processes' state).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds period = std::chrono::milliseconds(250));

}  // namespace edgehub::e2e

#include <thread>

template <class Pred>
bool edgehub::e2e::eventually(Pred pred, std::chrono::milliseconds limit,
                              std::chrono::milliseconds period) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(period);
  }
}

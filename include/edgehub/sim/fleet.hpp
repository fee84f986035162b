#pragma once
// A fleet of simulated KubeEdge edge nodes (edgecore's EdgeHub + the kubelet-side flows of
// edged/metamanager, KUBEEDGE-WIRE §1.2, §3.3, §3.6, §11) in one process.
//
// Nodes are spread over `io_threads` workers; a node lives on one worker for life. Each
// worker has one io_context and one timer heap (no per-node steady_timer).

#include <chrono>
#include <cstdint>
#include <edgehub/sim/stats.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <string>
#include <vector>

namespace edgehub::sim {

using Millis = std::chrono::milliseconds;

struct SimOptions {
  std::string host = "127.0.0.1";  // hub address (an IP literal or a resolvable name)
  std::uint16_t port = 10000;
  int nodes = 1;
  std::string prefix = "edge-";
  int first_index = 0;  // node names are <prefix><first_index + i>
  std::string project_id = "e632aba927ea4ac2b575ec1603d56f10";

  bool insecure = false;         // plain ws:// instead of wss://
  std::string server_ca_pem;     // verifies the hub; empty: no verification
  bool verify_hostname = false;  // check the hub cert's SAN against `host`
  // Per-node client certificates: minted from this CA, or loaded from certs_dir/<node>.{crt,key}.
  std::string client_ca_cert_pem;
  std::string client_ca_key_pem;
  std::string certs_dir;
  // Minted certificates share one P-256 key pair (the certificates stay per node). A key per
  // node costs ~2 KiB more per node and nothing on the hub's side can tell the difference.
  bool unique_keys = false;
  // Join with a KubeEdge token instead (KUBEEDGE-WIRE §5.4): the CA comes from the certificate
  // service, pinned by the token's hash, and each node's certificate from a CSR sent there.
  std::string token;
  std::string cert_service_host;
  std::uint16_t cert_service_port = 0;  // 0: no certificate service, no rotation
  // Renew a certificate through the service after this fraction of its life; 0: a random
  // point in 70–90 % as edgecore does. Only with a certificate service.
  double rotate_at = 0;

  int source_addrs = 0;  // > 0: bind to 127.0.0.2 … 127.0.0.<1+N> round-robin
  int io_threads = 1;
  int max_connecting = 256;  // concurrent dials per worker

  Millis keepalive{15'000};
  Millis lease_renew{10'000};
  Millis status_check{10'000};
  Millis status_report{300'000};
  Millis reconnect_delay{30'000};  // edgecore: 2 × heartbeat
  Millis reconnect_max{120'000};   // cap of the doubling backoff
  Millis handshake_timeout{30'000};
  Millis request_timeout{60'000};
  Millis start_spread{0};  // first dials spread over this window

  double drop_acks = 0.0;  // probability of not ACKing a cloud message
  Millis flap_every{0};    // > 0: each node drops its connection after ~this long
  Millis slow_reader{0};   // > 0: pause this long after each received message
  std::size_t ws_write_buffer = 512;  // client frames are masked through this buffer
};

// What a node has received, for convergence checks.
struct ObjectRecord {
  std::string kind;
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  bool deleted = false;
};

class Fleet {
 public:
  explicit Fleet(SimOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Loads/mints certificates and starts the workers. Throws on setup errors.
  void start();
  // Closes every connection and joins the workers. Idempotent.
  void stop();

  StatsSnapshot stats() const;
  // {"nodes":[{"name","connected","registered","connects","objects":[{kind,namespace,name,
  //   uid,resourceVersion,deleted}]}]} — collected from each worker on its own thread.
  nlohmann::json state_json();
  // Objects held by one node (empty if unknown).
  std::vector<ObjectRecord> objects_of(const std::string& node);

  const SimOptions& options() const { return options_; }
  std::string node_name(int i) const;

 private:
  net::CertAndKey join(const std::string& node, EVP_PKEY* shared_key);

  struct Impl;
  SimOptions options_;
  std::unique_ptr<Impl> impl_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit; returns "" or a message explaining why
// `needed` descriptors are not available.
std::string ensure_fd_limit(std::uint64_t needed);

}  // namespace edgehub::sim

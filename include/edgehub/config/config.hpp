#pragma once
// The typed configuration of edgehub: YAML file → defaults → ${ENV} → flags → validation.
// Every key, its default and its meaning live in one table (schema.cpp), from which
// docs/configuration.md is generated (`edgehub config-reference`).

#include <edgehub/config/values.hpp>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::config {

struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
};

struct ProxyConfig {
  bool enabled = false;  // behind a TLS-terminating ingress that forwards the edge's identity
  std::string identity_header = "X-Client-Cert-CN";
  std::vector<std::string> trusted_addresses;  // peers allowed to forward the identity
  // Mutual TLS between the ingress and the hub: the CA of the ingress's client certificate
  // (not the edge CA) and the CNs it may have. Empty: the edge port is plain WebSocket and
  // trusts the addresses above alone.
  std::string client_ca_file;
  std::vector<std::string> client_names;
};

struct CertServiceConfig {
  bool enabled = true;
  HostPort listen{"0.0.0.0", 10002};
  std::uint32_t edge_cert_days = 365;
  std::string ca_cert_file = "/etc/edgehub/ca/ca.crt";  // signs edge certificates
  std::string ca_key_file = "/etc/edgehub/ca/ca.key";
  // "namespace/name" of a Secret holding the CA (cadata, cakeydata: DER), shared by replicas;
  // empty: the CA comes from the files above.
  std::string ca_secret;
  // "namespace/name" of a Secret the hub keeps holding a current join token (tokendata).
  std::string token_secret;
  Duration token_refresh_interval{12 * 3600'000};
  Duration token_ttl{24 * 3600'000};
  // Extra SANs of the server certificate the hub issues itself from the Secret's CA.
  std::vector<std::string> server_names;
};

// Revoked edge identities, shared by every replica: a ConfigMap in hub.namespace with keys
// `nodes` (node names) and `serials` (certificate serials, hex), whitespace- or
// comma-separated. Each replica re-reads it every `interval`.
struct RevocationConfig {
  std::string config_map = "edgehub-revoked";  // empty: no deny list
  Duration interval{30'000};
};

struct HubConfig {
  std::string id = "${POD_NAME:-edgehub-0}";   // replica identity
  std::string namespace_ = "${POD_NAMESPACE:-edgehub}";
  std::string advertise_address = "${POD_IP:-127.0.0.1}";
  HostPort listen{"0.0.0.0", 10000};
  TlsFiles tls{"/etc/edgehub/tls/server.crt", "/etc/edgehub/tls/server.key",
               "/etc/edgehub/tls/ca.crt"};
  ProxyConfig proxy;
  CertServiceConfig cert_service;
  RevocationConfig revocation;
  std::uint32_t max_connections = 19000;
  std::uint32_t io_threads = 0;  // 0: one per hardware thread
  bool single_thread = false;     // edges and the API client on one thread
  Duration lease_write_interval{0};  // 0: every Lease renewal written
  std::uint32_t max_upstream_in_progress = 256;
  std::uint32_t max_requests_in_flight_per_node = 32;  // a session reads no more meanwhile
  std::uint64_t max_upstream_queued_bytes = 64ull << 20;
  std::uint32_t event_qps = 50;     // events per node and second (the kubelet's eventRecordQPS)
  std::uint32_t event_burst = 100;  // the kubelet's eventBurst
  Duration keepalive_timeout{30'000};
  Duration handshake_timeout{10'000};
  Duration hello_timeout{5'000};                // accepted → first byte
  std::uint32_t max_pending_connections = 4096;  // accepted, not yet sessions
  // Off (= max_pending_connections) by default: through the ingress (SSL passthrough) every
  // edge has the ingress controller's address.
  std::uint32_t max_pending_per_address = 4096;
  std::uint64_t max_message_bytes = 8ull << 20;
  std::uint64_t write_queue_bytes = 4ull << 20;
  std::uint32_t max_concurrent_handshakes = 256;
  bool compact_tls_sessions = true;  // TLS 1.3: only the traffic keys after the handshake
};

struct DeliveryConfig {
  std::uint32_t window = 16;          // un-ACKed messages in flight per node
  Duration retry_interval{5'000};
  bool node_sync = true;               // keep NodeSync records (ownership, what edges hold)
  Duration node_sync_interval{5'000}; // coalesced NodeSync writes, per node
  std::uint32_t max_concurrent_resyncs = 64;
  Duration audit_interval{60'000};    // each owned node's pods checked against its record
  Duration audit_grace{30'000};       // undelivered this long: repaired (and counted)
};

struct DevicesConfig {
  bool enabled = true;                 // route KubeEdge Device/DeviceModel objects
  Duration report_batch_window{1'000}; // device reports within it: one status PATCH per device
};

struct KubeConfig {
  std::string kubeconfig;  // empty: in-cluster service account
  std::string context;
  // hub.maxConnections (19,000) edges renew a Lease every 10 s: 1,900 writes/s; the rest is
  // for registration, status and NodeSync (docs/operations.md, Sizing).
  double qps = 2500;
  std::uint32_t burst = 5000;
  // A request rate for all replicas together (0: off). Each takes its edges' renewals plus an
  // equal part of the rest, re-read every rebalance.interval (docs/operations.md).
  double fleet_qps = 0;
  Duration request_timeout{30'000};
};

struct MetricsConfig {
  HostPort listen{"0.0.0.0", 9100};
  // Peers (IPs or CIDRs) served /debug/*; /metrics and the probes are served to anyone.
  std::vector<std::string> debug_from{"127.0.0.1/32", "::1/128"};
  std::uint32_t max_connections_per_address = 64;
};

struct LogConfig {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text, json
};

struct DrainConfig {
  Duration deadline{60'000};
  std::uint32_t sessions_per_second = 200;
};

struct RebalanceConfig {
  bool enabled = true;
  double tolerance = 0.10;  // fraction above the fleet average before shedding
  std::uint32_t sessions_per_round = 200;
  Duration interval{10'000};
};

struct DevConfig {
  HostPort api_listen{"127.0.0.1", 6443};
  std::string kubeconfig_out = "build/dev/kubeconfig";
  std::string certs_dir = "certs/dev";
};

struct Config {
  HubConfig hub;
  DeliveryConfig delivery;
  DevicesConfig devices;
  KubeConfig kube;
  MetricsConfig metrics;
  LogConfig log;
  DrainConfig drain;
  RebalanceConfig rebalance;
  DevConfig dev;
  bool dev_mode = false;  // --dev: embedded API server, dev certificates, loopback
};

// One problem, phrased `<file>: <key>: <reason>`.
struct ConfigError {
  std::string file;
  std::string key;
  std::string reason;
  std::string to_string() const;
};

using Errors = std::vector<ConfigError>;

// Command-line overrides; unset ones leave the file's value.
struct Overrides {
  bool dev = false;
  std::optional<std::string> kubeconfig;
  std::optional<std::string> listen;
  std::optional<std::string> metrics_listen;
  std::optional<std::string> cert_service_listen;
  std::optional<std::string> dev_api_listen;
  std::optional<std::string> hub_id;
  std::optional<std::string> log_level;
  std::optional<std::string> log_format;
};

// Loads `path` (or defaults only, when `path` is empty), expands ${ENV}, applies `overrides`
// and validates. Collects every problem instead of stopping at the first.
boost::system::result<Config, Errors> load(const std::string& path, const Overrides& overrides = {});
// The same from YAML text, `origin` naming it in errors.
boost::system::result<Config, Errors> load_text(const std::string& yaml, const std::string& origin,
                                                const Overrides& overrides = {});

// Every key with type, default and meaning, as Markdown (docs/configuration.md).
std::string reference_markdown();
// Every key's dotted path, in table order.
std::vector<std::string> keys();

}  // namespace edgehub::config

#include "schema.hpp"

#include <algorithm>

namespace edgehub::config::detail {

namespace {

template <class Ref>
Key string_key(std::string path, Ref ref, std::string doc) {
  return Key{std::move(path), "string", std::move(doc), false, true,
             [ref](Config& c, const std::string& v) -> std::optional<std::string> {
               ref(c) = v;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return ref(c); }};
}

template <class Ref>
Key enum_key(std::string path, Ref ref, std::vector<std::string> allowed, std::string doc) {
  std::string type;
  for (const auto& a : allowed) type += (type.empty() ? "" : " \\| ") + a;
  return Key{std::move(path), std::move(type), std::move(doc), false, false,
             [ref, allowed](Config& c, const std::string& v) -> std::optional<std::string> {
               if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
                 std::string list;
                 for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
                 return "\"" + v + "\" is not one of " + list;
               }
               ref(c) = v;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return ref(c); }};
}

template <class Ref>
Key host_port_key(std::string path, Ref ref, std::string doc) {
  return Key{std::move(path), "host:port", std::move(doc), false, false,
             [ref](Config& c, const std::string& v) -> std::optional<std::string> {
               auto parsed = parse_host_port(v);
               if (!parsed) return parsed.error().text;
               ref(c) = *parsed;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return ref(c).to_string(); }};
}

template <class Ref>
Key duration_key(std::string path, Ref ref, std::string doc, bool zero_allowed = false) {
  return Key{std::move(path), "duration", std::move(doc), false, false,
             [ref, zero_allowed](Config& c, const std::string& v) -> std::optional<std::string> {
               auto parsed = parse_duration(v);
               if (!parsed) return parsed.error().text;
               if (parsed->count() < 0 || (parsed->count() == 0 && !zero_allowed)) {
                 return "\"" + v + "\" must be longer than zero";
               }
               ref(c) = *parsed;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return format_duration(ref(c)); }};
}

template <class Ref>
Key size_key(std::string path, Ref ref, std::string doc) {
  return Key{std::move(path), "size", std::move(doc), false, false,
             [ref](Config& c, const std::string& v) -> std::optional<std::string> {
               auto parsed = parse_size(v);
               if (!parsed) return parsed.error().text;
               if (*parsed == 0) return "\"" + v + "\" must be larger than zero";
               ref(c) = *parsed;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return format_size(ref(c)); }};
}

template <class Ref>
Key int_key(std::string path, Ref ref, std::int64_t min, std::int64_t max, std::string doc) {
  return Key{std::move(path), "integer " + std::to_string(min) + "…" + std::to_string(max),
             std::move(doc), false, false,
             [ref, min, max](Config& c, const std::string& v) -> std::optional<std::string> {
               auto parsed = parse_int(v, min, max);
               if (!parsed) return parsed.error().text;
               ref(c) = static_cast<std::remove_reference_t<decltype(ref(c))>>(*parsed);
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return std::to_string(ref(c)); }};
}

template <class Ref>
Key number_key(std::string path, Ref ref, double min, double max, std::string doc) {
  return Key{std::move(path), "number", std::move(doc), false, false,
             [ref, min, max](Config& c, const std::string& v) -> std::optional<std::string> {
               char* end = nullptr;
               const double d = std::strtod(v.c_str(), &end);
               if (v.empty() || end != v.c_str() + v.size()) return "\"" + v + "\" is not a number";
               if (d < min || d > max) {
                 return "\"" + v + "\" is out of range [" + std::to_string(min) + ", " +
                        std::to_string(max) + "]";
               }
               ref(c) = d;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) {
               std::string s = std::to_string(ref(c));
               s.erase(s.find_last_not_of('0') + 1);
               if (s.back() == '.') s.pop_back();
               return s;
             }};
}

template <class Ref>
Key bool_key(std::string path, Ref ref, std::string doc) {
  return Key{std::move(path), "bool", std::move(doc), false, false,
             [ref](Config& c, const std::string& v) -> std::optional<std::string> {
               auto parsed = parse_bool(v);
               if (!parsed) return parsed.error().text;
               ref(c) = *parsed;
               return std::nullopt;
             },
             nullptr, [ref](Config& c) { return ref(c) ? std::string("true") : "false"; }};
}

template <class Ref>
Key list_key(std::string path, Ref ref, std::string doc) {
  return Key{std::move(path), "list of strings", std::move(doc), true, false, nullptr,
             [ref](Config& c, const std::vector<std::string>& v) -> std::optional<std::string> {
               ref(c) = v;
               return std::nullopt;
             },
             [ref](Config& c) {
               std::string s = "[";
               for (const auto& item : ref(c)) s += (s.size() > 1 ? ", " : "") + item;
               return s + "]";
             }};
}

#define EDGEHUB_FIELD(member) [](Config& c) -> auto& { return c.member; }

std::vector<Key> build() {
  return {
      string_key("hub.id", EDGEHUB_FIELD(hub.id),
                 "Replica identity: owner name in NodeSync records and the replica's Lease. "
                 "In a Deployment, the pod name."),
      string_key("hub.namespace", EDGEHUB_FIELD(hub.namespace_),
                 "Namespace of the replica's own objects (membership Leases, token Secret)."),
      string_key("hub.advertiseAddress", EDGEHUB_FIELD(hub.advertise_address),
                 "Address other replicas and operators see for this replica (pod IP)."),
      host_port_key("hub.listen", EDGEHUB_FIELD(hub.listen),
                    "Edge WebSocket port (TLS, client certificates required)."),
      string_key("hub.tls.certFile", EDGEHUB_FIELD(hub.tls.cert_file),
                 "Server certificate (PEM, ECDSA or RSA); its SANs must cover the address edges dial."),
      string_key("hub.tls.keyFile", EDGEHUB_FIELD(hub.tls.key_file), "Server private key (PEM)."),
      string_key("hub.tls.clientCAFile", EDGEHUB_FIELD(hub.tls.client_ca_file),
                 "CA that signs edge client certificates (PEM)."),
      bool_key("hub.proxy.enabled", EDGEHUB_FIELD(hub.proxy.enabled),
               "Behind a TLS-terminating ingress that forwards the verified client identity "
               "(plain WebSocket, or mutual TLS with hub.proxy.clientCAFile)."),
      string_key("hub.proxy.identityHeader", EDGEHUB_FIELD(hub.proxy.identity_header),
                 "Header carrying the verified client certificate CN."),
      list_key("hub.proxy.trustedAddresses", EDGEHUB_FIELD(hub.proxy.trusted_addresses),
               "Peer addresses (IPs or CIDRs) allowed to forward the identity header; required "
               "without hub.proxy.clientCAFile, optional with it."),
      string_key("hub.proxy.clientCAFile", EDGEHUB_FIELD(hub.proxy.client_ca_file),
                 "Mutual TLS with the ingress: CA of the ingress's client certificate (PEM; "
                 "not the edge CA). The edge port then speaks TLS (hub.tls.certFile) and reads "
                 "the identity header only from a client with such a certificate."),
      list_key("hub.proxy.clientNames", EDGEHUB_FIELD(hub.proxy.client_names),
               "CNs the ingress's client certificate may have (required with "
               "hub.proxy.clientCAFile)."),
      bool_key("hub.certService.enabled", EDGEHUB_FIELD(hub.cert_service.enabled),
               "Serve the KubeEdge certificate service (CA download, edge certificate signing)."),
      host_port_key("hub.certService.listen", EDGEHUB_FIELD(hub.cert_service.listen),
                    "HTTPS port of the certificate service."),
      int_key("hub.certService.edgeCertDays", EDGEHUB_FIELD(hub.cert_service.edge_cert_days), 1,
              365, "Validity of signed edge certificates, in days (at most a year, as the "
              "kubelet's; an edge renews with its current certificate before expiry)."),
      string_key("hub.certService.caCertFile", EDGEHUB_FIELD(hub.cert_service.ca_cert_file),
                 "CA certificate (PEM) that signs edge certificates and join tokens; every "
                 "replica must use the same one."),
      string_key("hub.certService.caKeyFile", EDGEHUB_FIELD(hub.cert_service.ca_key_file),
                 "That CA's private key (PEM)."),
      string_key("hub.certService.caSecret", EDGEHUB_FIELD(hub.cert_service.ca_secret),
                 "namespace/name of a Secret holding the edge CA (keys cadata and cakeydata, DER, "
                 "as KubeEdge's kubeedge/casecret), shared by every replica. The first replica "
                 "creates it from caCertFile/caKeyFile when they exist, else with a fresh CA; "
                 "each replica then issues its own server certificate from that CA (hub.tls "
                 "files are not used). Empty: the CA comes from the files."),
      string_key("hub.certService.tokenSecret", EDGEHUB_FIELD(hub.cert_service.token_secret),
                 "namespace/name of a Secret (key tokendata, as kubeedge/tokensecret) in which "
                 "the hub keeps a current join token for `keadm join --token`. Empty: none."),
      duration_key("hub.certService.tokenRefreshInterval",
                   EDGEHUB_FIELD(hub.cert_service.token_refresh_interval),
                   "How often the token in tokenSecret is replaced."),
      duration_key("hub.certService.tokenTTL", EDGEHUB_FIELD(hub.cert_service.token_ttl),
                   "Validity of the tokens written to tokenSecret; longer than "
                   "tokenRefreshInterval, so the token read from the Secret is always usable."),
      list_key("hub.certService.serverNames", EDGEHUB_FIELD(hub.cert_service.server_names),
               "With caSecret: DNS names and IPs edges dial (Ingress host, load balancer), added "
               "to the SANs of the server certificate (localhost, 127.0.0.1, ::1 and "
               "hub.advertiseAddress are always in)."),
      string_key("hub.revocation.configMap", EDGEHUB_FIELD(hub.revocation.config_map),
                 "ConfigMap in hub.namespace listing revoked edges: key `nodes` (node names), key "
                 "`serials` (client certificate serials, hex), whitespace- or comma-separated. A "
                 "revoked edge is refused at connect (403) and by the certificate service, and "
                 "its open session is closed. Missing ConfigMap: nothing revoked. Empty: no "
                 "deny list."),
      duration_key("hub.revocation.interval", EDGEHUB_FIELD(hub.revocation.interval),
                   "How often each replica re-reads the revocation ConfigMap: a revocation "
                   "takes effect everywhere within it."),
      int_key("hub.maxConnections", EDGEHUB_FIELD(hub.max_connections), 1, 1'000'000,
              "Edge connections accepted at most; more are refused with 503."),
      int_key("hub.ioThreads", EDGEHUB_FIELD(hub.io_threads), 0, 256,
              "I/O threads; 0 means one per hardware thread."),
      duration_key("hub.leaseWriteInterval", EDGEHUB_FIELD(hub.lease_write_interval),
                   "0s: every Lease renewal an edge sends is written to the API. Longer: while "
                   "an edge's session lives, a renewal that comes less than this after the "
                   "session's last written one is answered with the edge's own Lease and not "
                   "written; the next one after it is (only renewTimes the edge sent are ever "
                   "written, and a new session's first renewal always is). The API's renewTime "
                   "then ages up to this plus the edges' renewal period (10 s for a kubelet): "
                   "keep that well under kube-controller-manager's --node-monitor-grace-period "
                   "(40 s by default), e.g. 20s. At most 30s.",
                   true),
      bool_key("hub.singleThread", EDGEHUB_FIELD(hub.single_thread),
               "Run the edges' connections and the Kubernetes API client on one thread "
               "(hub.ioThreads must then be 0 or 1; the certificate service keeps its own): an "
               "edge request and its reply cross no thread, so no other thread is woken per "
               "request. The choice when several replicas share a host's cores; off, a busy API "
               "loop (a relist) and the edges' I/O run on separate threads."),
      int_key("hub.maxUpstreamInProgress", EDGEHUB_FIELD(hub.max_upstream_in_progress), 1,
              100'000,
              "Edge requests handled at once (waiting for the API or answered by it); the rest "
              "wait, each holding only its message, and start by class shares (leases 8, "
              "status 4, NodeSync 2, the rest 1) and in turn between nodes, at most 4 per node."),
      int_key("hub.maxRequestsInFlightPerNode",
              EDGEHUB_FIELD(hub.max_requests_in_flight_per_node), 1, 100'000,
              "Requests of one edge waiting or in progress at most; at the limit its session "
              "stops reading (TCP backpressure) until one is answered, and its keepalive "
              "deadline does not run meanwhile."),
      size_key("hub.maxUpstreamQueuedBytes", EDGEHUB_FIELD(hub.max_upstream_queued_bytes),
               "Bytes of edge requests waiting for a slot, all edges together; beyond it new "
               "requests are answered 429 (TooManyRequests) until the queue drains."),
      int_key("hub.eventQps", EDGEHUB_FIELD(hub.event_qps), 0, 100'000,
              "Events one edge may record per second (the kubelet's eventRecordQPS); beyond "
              "it and hub.eventBurst its events are dropped and counted. 0: no limit."),
      int_key("hub.eventBurst", EDGEHUB_FIELD(hub.event_burst), 1, 1'000'000,
              "Events one edge may record at once before hub.eventQps applies (the kubelet's "
              "eventBurst)."),
      duration_key("hub.keepaliveTimeout", EDGEHUB_FIELD(hub.keepalive_timeout),
                   "A session without a keepalive for this long is closed (cloudcore: 30s)."),
      duration_key("hub.handshakeTimeout", EDGEHUB_FIELD(hub.handshake_timeout),
                   "From an edge connection's first byte, TLS handshake plus WebSocket upgrade "
                   "(waiting for a handshake slot included) must finish within this."),
      duration_key("hub.helloTimeout", EDGEHUB_FIELD(hub.hello_timeout),
                   "An edge connection that sends nothing (no ClientHello) for this long after "
                   "being accepted is closed; until its first byte it holds no handshake slot."),
      int_key("hub.maxPendingConnections", EDGEHUB_FIELD(hub.max_pending_connections), 1,
              1'000'000,
              "Edge connections accepted and not yet sessions (waiting for a first byte or a "
              "handshake slot, handshaking); more are closed at once."),
      int_key("hub.maxPendingPerAddress", EDGEHUB_FIELD(hub.max_pending_per_address), 1,
              1'000'000,
              "The same per source address, so that one address cannot take every slot. "
              "The default equals hub.maxPendingConnections because through the ingress "
              "(SSL passthrough) every edge has the ingress controller's address; lower it "
              "(e.g. 128) where edges reach the replica with their own addresses."),
      size_key("hub.maxMessageBytes", EDGEHUB_FIELD(hub.max_message_bytes),
               "Largest WebSocket message accepted from an edge."),
      size_key("hub.writeQueueBytes", EDGEHUB_FIELD(hub.write_queue_bytes),
               "Bytes queued to one edge at most; a slower reader is disconnected."),
      int_key("hub.maxConcurrentHandshakes", EDGEHUB_FIELD(hub.max_concurrent_handshakes), 1,
              100'000, "TLS handshakes in progress at once; more connections wait."),
      bool_key("hub.compactTlsSessions", EDGEHUB_FIELD(hub.compact_tls_sessions),
               "After a TLS 1.3 handshake, keep only the connection's traffic keys and free "
               "OpenSSL's per-connection state (~19 KiB per edge); TLS 1.2 edges keep OpenSSL's."),
      int_key("delivery.window", EDGEHUB_FIELD(delivery.window), 1, 64,
              "Un-ACKed messages in flight per node (edgecore buffers 100)."),
      duration_key("delivery.retryInterval", EDGEHUB_FIELD(delivery.retry_interval),
                   "Re-send an un-ACKed message after this long."),
      bool_key("delivery.nodeSync", EDGEHUB_FIELD(delivery.node_sync),
               "Keep a NodeSync record per node (ownership claims, what its edge holds). Needs "
               "the NodeSync CRD; turn off only for a single replica without it."),
      duration_key("delivery.nodeSyncInterval", EDGEHUB_FIELD(delivery.node_sync_interval),
                   "At most one NodeSync write per node per interval (ACKs are coalesced)."),
      int_key("delivery.maxConcurrentResyncs", EDGEHUB_FIELD(delivery.max_concurrent_resyncs), 1,
              100'000, "Nodes resynced from the API at once after (re)connecting."),
      duration_key("delivery.auditInterval", EDGEHUB_FIELD(delivery.audit_interval),
                   "Each owned node's pods, as the API lists them, are compared with what its "
                   "edge ACKed about this often (at most 10 node lists per second per replica, "
                   "so large fleets take longer); 0 turns the audit off."),
      duration_key("delivery.auditGrace", EDGEHUB_FIELD(delivery.audit_grace),
                   "A pod the audit finds undelivered for this long is sent again, logged and "
                   "counted in edgehub_delivery_repairs_total."),
      bool_key("devices.enabled", EDGEHUB_FIELD(devices.enabled),
               "Route KubeEdge Device and DeviceModel objects (devices.kubeedge.io/v1beta1) to "
               "their nodes and write device reports back; off when the CRDs are not served."),
      duration_key("devices.reportBatchWindow", EDGEHUB_FIELD(devices.report_batch_window),
                   "Device twin and state reports within this window become one status PATCH "
                   "per device."),
      string_key("kube.kubeconfig", EDGEHUB_FIELD(kube.kubeconfig),
                 "Kubeconfig file; empty means the in-cluster service account."),
      string_key("kube.context", EDGEHUB_FIELD(kube.context),
                 "Kubeconfig context; empty means current-context."),
      number_key("kube.qps", EDGEHUB_FIELD(kube.qps), 0.1, 100'000,
                 "Client-side API request rate. Waiting requests share it by class (leases 8, "
                 "status 4, NodeSync 2, the rest 1); the default serves hub.maxConnections "
                 "edges' Lease renewals (one per edge every 10 s: 1,900/s) with a quarter to "
                 "spare."),
      int_key("kube.burst", EDGEHUB_FIELD(kube.burst), 1, 100'000,
              "Client-side API burst: requests allowed at once after a quiet time (2 s of "
              "kube.qps by default)."),
      number_key("kube.fleetQps", EDGEHUB_FIELD(kube.fleet_qps), 0, 1'000'000,
                 "API request rate for all live replicas together; 0 turns it off (each "
                 "replica has kube.qps). A replica takes its own edges' Lease renewals (edges / "
                 "10 per second) plus an equal part of what the fleet's renewals leave, never "
                 "more than kube.qps, re-read from the membership Leases every "
                 "rebalance.interval. At least edges / 5 keeps renewals first through a "
                 "reconnect storm."),
      duration_key("kube.requestTimeout", EDGEHUB_FIELD(kube.request_timeout),
                   "Timeout of one API request (watches excepted)."),
      host_port_key("metrics.listen", EDGEHUB_FIELD(metrics.listen),
                    "HTTP port of /metrics, /healthz, /readyz and /debug/nodes."),
      list_key("metrics.debugFrom", EDGEHUB_FIELD(metrics.debug_from),
               "Peer addresses (IPs or CIDRs) served /debug/*; others get 403. /metrics, "
               "/healthz and /readyz are served to any peer (Prometheus, the kubelet)."),
      int_key("metrics.maxConnectionsPerAddress",
              EDGEHUB_FIELD(metrics.max_connections_per_address), 1, 100'000,
              "Connections to the metrics port from one address at most (1,024 in all, and "
              "64 more that serve only /healthz and /readyz)."),
      enum_key("log.level", EDGEHUB_FIELD(log.level), {"trace", "debug", "info", "warn", "error"},
               "Least severe level logged."),
      enum_key("log.format", EDGEHUB_FIELD(log.format), {"text", "json"},
               "text for people, json (one object per line) for collectors."),
      duration_key("drain.deadline", EDGEHUB_FIELD(drain.deadline),
                   "On SIGTERM, exit by this time; match terminationGracePeriodSeconds."),
      int_key("drain.sessionsPerSecond", EDGEHUB_FIELD(drain.sessions_per_second), 1, 100'000,
              "Sessions closed per second while draining."),
      bool_key("rebalance.enabled", EDGEHUB_FIELD(rebalance.enabled),
               "Shed connections when far above the fleet average."),
      number_key("rebalance.tolerance", EDGEHUB_FIELD(rebalance.tolerance), 0, 10,
                 "Fraction above the fleet average tolerated before shedding."),
      int_key("rebalance.sessionsPerRound", EDGEHUB_FIELD(rebalance.sessions_per_round), 1,
              100'000, "Sessions shed per round at most (after a round that shed some, the replica waits two "
              "rounds before it judges again)."),
      duration_key("rebalance.interval", EDGEHUB_FIELD(rebalance.interval),
                   "Time between rebalancing rounds; also how often the replica renews its "
                   "membership Lease and reads the fleet's."),
      host_port_key("dev.apiListen", EDGEHUB_FIELD(dev.api_listen),
                    "--dev: address of the embedded API server."),
      string_key("dev.kubeconfigOut", EDGEHUB_FIELD(dev.kubeconfig_out),
                 "--dev: where the kubeconfig for kubectl is written."),
      string_key("dev.certsDir", EDGEHUB_FIELD(dev.certs_dir),
                 "--dev: dev CA and server certificate, created when missing."),
  };
}

#undef EDGEHUB_FIELD

}  // namespace

const std::vector<Key>& schema() {
  static const std::vector<Key> keys = build();
  return keys;
}

const Key* find_key(const std::string& path) {
  for (const auto& key : schema()) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

bool is_section(const std::string& path) {
  const std::string prefix = path + ".";
  return std::any_of(schema().begin(), schema().end(),
                     [&](const Key& key) { return key.path.starts_with(prefix); });
}

}  // namespace edgehub::config::detail

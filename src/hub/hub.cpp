#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <edgehub/hub/api_budget.hpp>
#include <edgehub/hub/delivery_audit.hpp>
#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/downstream.hpp>
#include <edgehub/hub/hub.hpp>
#include <edgehub/hub/listener.hpp>
#include <edgehub/hub/membership.hpp>
#include <edgehub/hub/node_admission.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <edgehub/hub/registry.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/net/address_range.hpp>
#include <edgehub/net/http_server.hpp>
#include <edgehub/net/run_guarded.hpp>
#include <edgehub/pki/cert_service.hpp>
#include <edgehub/pki/shared_pki.hpp>
#include <edgehub/version.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>
#include <sys/resource.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <future>
#include <thread>

namespace edgehub::hub {

namespace {

// Raises the soft open-files limit to the hard one and returns how many descriptors edge
// connections (pending and sessions) may hold: the limit less `kept` for the API client's
// connections, the watches, the admin port, the certificate service and the process's own
// files — at the limit those would fail first, and with them readiness. 0: no limit known.
std::size_t edge_descriptor_budget(std::size_t kept) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY) return 0;
  const auto total = static_cast<std::size_t>(limit.rlim_cur);
  const std::size_t budget = total > kept + 64 ? total - kept : 64;
  spdlog::info("open files: limit {}; edge connections may hold {}, {} kept for the rest", total,
               budget, total - std::min(total, budget));
  return budget;
}

}  // namespace

namespace asio = boost::asio;
using Guard = asio::executor_work_guard<asio::io_context::executor_type>;

namespace {

// Named options: see the GCC 12 note in upstream.cpp (no aggregate temporaries in co_await).
const kube::RequestOptions kNodeLease{.priority = kube::Priority::Lease};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

double resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  double pages = 0;
  double resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

struct Hub::Impl : SessionHost {
  explicit Impl(HubOptions o) : options(std::move(o)) {}

  // SessionHost (session threads).
  void on_open(const std::shared_ptr<Session>& s) override;
  void on_request(const std::shared_ptr<Session>& s, wire::Message m) override;
  void on_delivered(Session& s, const Change& c, std::chrono::steady_clock::duration d) override;
  void on_closed(Session& s, CloseReason r) override;
  // API thread: the node's NodeSync claim finished.
  void on_claimed(const std::string& node, std::uint64_t session_id, bool ok,
                  const std::string& reason);

  void start();
  void stop();
  void drain();
  asio::awaitable<void> drain_sessions(std::chrono::steady_clock::time_point deadline);
  // Renews the node's Lease in kube-node-lease, then closes its session with 1012, so the
  // node stays Ready while its agent reconnects elsewhere (drain, rebalance).
  asio::awaitable<void> hand_off(std::shared_ptr<Session> session);
  void on_fleet(const std::vector<ReplicaInfo>& live);
  void take_fleet_share(const std::vector<ReplicaInfo>& live);
  void start_admin();
  // API thread, after each read of the deny list: sessions of revoked identities end.
  void close_revoked_sessions();
  void schedule_trim();
  // Every watch this replica needs is established (pods, nodes, configmaps, secrets, devices,
  // NodeSyncs).
  bool watches_ready() const {
    return downstream->ready() && devices->ready() && (!node_sync || node_sync->ready());
  }
  std::function<void(std::string_view)> http_refusal_counter(std::string server);
  void debug_nodes(net::Respond respond);
  void debug_node(const std::string& node, net::Respond respond);
  SessionOptions session_options();
  // Proxy mode: the edge port's TLS towards the ingress (hub.proxy.clientCAFile), or null for
  // plain WebSocket from hub.proxy.trustedAddresses.
  std::shared_ptr<net::TlsContext> proxy_tls() const;

  HubOptions options;
  metrics::Registry metrics;
  asio::io_context api_io;
  // The certificate service's TLS handshakes and requests: off the API thread, so that a
  // flood of :10002 cannot delay the watches and edge requests, nor they the service.
  asio::io_context cert_io{1};
  // Declared after api_io so that they are destroyed first: handlers still queued on an edge
  // loop (an accept holding the listener, a session) may hold objects whose destructors use
  // the API loop's executor.
  std::vector<std::unique_ptr<asio::io_context>> io;  // none with hub.singleThread
  std::vector<Guard> guards;
  std::vector<std::thread> threads;
  std::shared_ptr<kube::Client> client;
  Registry registry;
  RoutingIndex index;  // API thread
  std::unique_ptr<Upstream> upstream;
  std::unique_ptr<ApiBudget> api_budget;  // API thread
  std::unique_ptr<NodeSync> node_sync;
  std::unique_ptr<Downstream> downstream;
  std::unique_ptr<DeliveryAudit> audit;
  std::unique_ptr<Membership> membership;
  std::unique_ptr<DeviceRouter> devices;
  std::unique_ptr<DeviceReports> device_reports;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<net::HttpServer> admin;
  std::unique_ptr<pki::CertService> cert_service;
  std::shared_ptr<pki::SharedPki> shared_pki;  // CA and join token Secrets (API thread)
  std::shared_ptr<NodeAdmission> admission;     // revoked and non-edge identities (API thread)
  std::unique_ptr<asio::steady_timer> trim_timer;
  std::atomic<bool> accepting{false};
  std::atomic<bool> downstream_ready{false};
  std::atomic<bool> stopping{false};
  std::chrono::steady_clock::time_point last_shed{};  // API thread
  bool stopped = false;
  std::mutex closed_mutex;
  std::condition_variable closed_cv;
  metrics::Family<metrics::Counter>* closes = nullptr;
  metrics::Family<metrics::Counter>* rejections = nullptr;
  metrics::Family<metrics::Counter>* http_refusals = nullptr;
  metrics::Family<metrics::Counter>* handler_exceptions = nullptr;
  std::vector<net::AddressRange> debug_from;
  metrics::Histogram* ack_latency = nullptr;
  metrics::Counter* opened = nullptr;
  metrics::Counter* replaced = nullptr;
  metrics::Family<metrics::Counter>* handed_off = nullptr;
  std::shared_ptr<SessionMetrics> session_metrics;
};

std::shared_ptr<net::TlsContext> Hub::Impl::proxy_tls() const {
  if (options.proxy_client_ca_pem.empty()) {
    spdlog::warn("hub.proxy: the edge port is plain WebSocket and trusts the identity header from "
                 "hub.proxy.trustedAddresses alone; set hub.proxy.clientCAFile to authenticate "
                 "the ingress with mutual TLS");
    return nullptr;
  }
  if (options.server_cert_pem.empty() || options.server_key_pem.empty()) {
    throw std::runtime_error("hub.proxy.clientCAFile: no server certificate for the edge port "
                             "(hub.tls.certFile / keyFile, or hub.certService.caSecret)");
  }
  return std::make_shared<net::TlsContext>(
      net::TlsContext::server({.cert_chain_pem = options.server_cert_pem,
                               .private_key_pem = options.server_key_pem,
                               .client_ca_pem = options.proxy_client_ca_pem}));
}

SessionOptions Hub::Impl::session_options() {
  const auto& c = options.config;
  SessionOptions s;
  s.keepalive_timeout = c.hub.keepalive_timeout;
  s.write_queue_bytes = c.hub.write_queue_bytes;
  s.max_message_bytes = c.hub.max_message_bytes;
  s.max_requests_in_flight = c.hub.max_requests_in_flight_per_node;
  s.delivery.window = c.delivery.window;
  s.delivery.retry_interval = c.delivery.retry_interval;
  auto m = std::make_shared<SessionMetrics>();
  auto& messages = metrics.counter("edgehub_messages_total",
                                   "WebSocket messages, by direction (in: from edges).",
                                   {"direction"});
  auto& bytes = metrics.counter("edgehub_message_bytes_total",
                                "WebSocket payload bytes, by direction.", {"direction"});
  m->messages_in = &messages.with({"in"});
  m->messages_out = &messages.with({"out"});
  m->bytes_in = &bytes.with({"in"});
  m->bytes_out = &bytes.with({"out"});
  m->keepalives = &metrics.counter("edgehub_keepalives_total", "Keepalives received from edges.").with({});
  m->acks = &metrics.counter("edgehub_acks_total", "ACKs that completed a delivery.").with({});
  m->retries = &metrics.counter("edgehub_delivery_retries_total",
                                "Messages re-sent because their ACK did not come in time.")
                    .with({});
  m->bad_messages = &metrics.counter("edgehub_bad_messages_total",
                                     "Undecodable messages from edges (the session is closed).")
                         .with({});
  m->empty_messages = &metrics.counter("edgehub_empty_messages_total",
                                       "Empty messages (edgecore's goodbye on shutdown).")
                           .with({});
  m->queued = &metrics.gauge("edgehub_delivery_queue_depth",
                             "Messages queued or awaiting an ACK, all sessions.")
                   .with({});
  m->internal_latency =
      &metrics
           .histogram("edgehub_delivery_internal_latency_seconds",
                      "Time from a watch event decoded to its message written to the edge's "
                      "socket (first sends).",
                      {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025,
                       0.05, 0.1, 0.25, 1})
           .with({});
  session_metrics = m;
  s.metrics = m;
  return s;
}

void Hub::Impl::start() {
  const auto& c = options.config;
  closes = &metrics.counter("edgehub_session_closes_total", "Sessions closed, by reason.", {"reason"});
  rejections = &metrics.counter("edgehub_rejected_connections_total",
                                "Edge connections refused before a session, by reason.",
                                {"reason"});
  http_refusals = &metrics.counter(
      "edgehub_http_refusals_total",
      "Connections and requests to the metrics port and the certificate service refused "
      "before a handler, by server and reason.",
      {"server", "reason"});
  handler_exceptions = &metrics.counter(
      "edgehub_handler_exceptions_total",
      "Exceptions that reached a thread's event loop (a bug: handlers catch what they throw), "
      "by thread.",
      {"thread"});
  opened = &metrics.counter("edgehub_sessions_opened_total", "Sessions opened.").with({});
  replaced = &metrics.counter("edgehub_sessions_replaced_total",
                              "Sessions closed because the node connected again.")
                  .with({});
  handed_off = &metrics.counter("edgehub_sessions_handed_off_total",
                                "Sessions closed with 1012 after renewing their node's Lease, so "
                                "the agent reconnects to another replica, by cause.",
                                {"cause"});
  ack_latency = &metrics.histogram("edgehub_ack_latency_seconds",
                                   "Time from a message's first send to its ACK.",
                                   metrics::latency_buckets())
                     .with({});
  metrics.gauge_callback("edgehub_sessions", "Edge sessions open on this replica.",
                         [this] { return static_cast<double>(registry.size()); });
  metrics.gauge_callback("edgehub_connections",
                         "Edge connections: sessions plus handshakes in progress.", [this] {
                           return listener ? static_cast<double>(listener->connections()) : 0.0;
                         });
  metrics.gauge_callback("edgehub_handshakes_in_progress", "TLS handshakes and upgrades running.",
                         [this] {
                           return listener ? static_cast<double>(listener->handshakes_in_progress())
                                           : 0.0;
                         });
  metrics.gauge_callback("edgehub_pending_connections",
                         "Edge connections accepted and not yet sessions (all stages).", [this] {
                           return listener ? static_cast<double>(listener->pending()) : 0.0;
                         });
  metrics.gauge_callback(
      "edgehub_api_requests_waiting",
      "Requests to the Kubernetes API waiting in the client-side rate limiter (kube.qps).",
      [this] {
        return client ? static_cast<double>(client->limiter().waiting_now().load(
                            std::memory_order_relaxed))
                      : 0.0;
      });
  metrics.gauge_callback("edgehub_process_resident_memory_bytes", "Resident set size.",
                         [] { return resident_bytes(); });
  metrics.gauge_callback("edgehub_ready", "1 when this replica accepts edges and watches the API.",
                         [this] { return accepting && downstream_ready && !stopping ? 1.0 : 0.0; });

  // hub.singleThread: the edges' sessions run on the API loop, so an edge request and its
  // reply are posts within one thread, not wake-ups of another.
  const std::size_t threads_wanted =
      c.hub.single_thread  ? 0
      : c.hub.io_threads != 0 ? c.hub.io_threads
                              : std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < threads_wanted; ++i) {
    io.push_back(std::make_unique<asio::io_context>(1));
    guards.emplace_back(io.back()->get_executor());
  }
  guards.emplace_back(api_io.get_executor());
  guards.emplace_back(cert_io.get_executor());

  auto made = kube::Client::make(api_io.get_executor(), options.kube,
                                 {.request_timeout = c.kube.request_timeout,
                                  .qps = c.kube.qps,
                                  .burst = static_cast<double>(c.kube.burst),
                                  .on_request = api_request_metrics(metrics)});
  if (!made) throw std::runtime_error("kubernetes API client: " + made.error().describe());
  client = *made;
  shared_pki = std::make_shared<pki::SharedPki>(client, pki::SharedPkiOptions::from(c), options.edge_ca);
  if (shared_pki->load_ca(api_io)) {  // hub.certService.caSecret: the CA every replica shares
    options.edge_ca = shared_pki->ca();
    options.server_cert_pem = shared_pki->server_cert_pem();
    options.server_key_pem = shared_pki->server_key_pem();
    // Behind an ingress the edge port's TLS is proxy_tls() (built below from these), not the
    // edges'.
    if (!c.hub.proxy.enabled) options.edge_tls = shared_pki->edge_tls();
  }
  if (c.hub.proxy.enabled) options.edge_tls = proxy_tls();
  admission = NodeAdmission::make(
      client, metrics,
      NodeAdmissionOptions{.ns = c.hub.namespace_,
                           .revocation_config_map = c.hub.revocation.config_map,
                           .reread_interval = c.hub.revocation.interval});
  upstream = std::make_unique<Upstream>(
      *client, index, metrics, options.kube_ca_pem,
      UpstreamLimits{.max_in_progress = c.hub.max_upstream_in_progress,
                     .max_waiting_per_node = 2 * std::size_t{c.hub.max_requests_in_flight_per_node},
                     .max_waiting_bytes = c.hub.max_upstream_queued_bytes,
                     .event_qps = static_cast<double>(c.hub.event_qps),
                     .event_burst = static_cast<double>(c.hub.event_burst)});
  api_budget = std::make_unique<ApiBudget>(api_io.get_executor(), client->limiter(), metrics,
                                           [this] { return registry.size(); });
  api_budget->fleet_budget(c.kube.fleet_qps > 0);
  if (c.delivery.node_sync) {
    node_sync = std::make_unique<NodeSync>(
        client, metrics,
        NodeSyncOptions{.replica = c.hub.id, .flush_interval = c.delivery.node_sync_interval},
        [this](const std::string& node, Change change) {
          downstream->deliver(node, std::move(change));
        },
        [this](const std::string& node, std::uint64_t session_id, bool ok,
               const std::string& reason) { on_claimed(node, session_id, ok, reason); },
        [this](const std::string& node, const std::string&) {
          if (auto session = registry.find(node)) {
            asio::post(session->executor(), [session] { session->close(CloseReason::claimed); });
          }
        });
  }
  if (node_sync) {
    // First a resync; if the node still ACKs nothing, a fresh session (the agent reconnects,
    // the new owner resyncs from the record).
    node_sync->on_stalled([this](const std::string& node, int times) {
      if (times < 2) {
        downstream->resync(node);
        devices->resync(node);
        return;
      }
      if (auto session = registry.find(node)) {
        spdlog::warn("node {}: no ACK for its recorded objects after a resync; closing its "
                     "session so that it reconnects", node);
        asio::post(session->executor(), [session] { session->close(CloseReason::stalled); });
      }
    });
  }
  downstream = std::make_unique<Downstream>(
      client, index, registry, node_sync.get(), metrics,
      DownstreamOptions{.max_concurrent_resyncs = c.delivery.max_concurrent_resyncs});
  audit = std::make_unique<DeliveryAudit>(
      client, registry, node_sync.get(), metrics,
      DeliveryAuditOptions{.interval = c.delivery.audit_interval, .grace = c.delivery.audit_grace},
      [this](const std::string& node, const kube::Object& pod) {
        downstream->redeliver_pod(node, pod);
      },
      [this](const std::string& node, std::uint64_t session_id) {
        if (node_sync) return node_sync->claim(node, session_id);
        on_claimed(node, session_id, true, "");
      });
  membership = std::make_unique<Membership>(
      client, metrics,
      MembershipOptions{.replica = c.hub.id,
                        .ns = c.hub.namespace_,
                        .address = c.hub.advertise_address,
                        .renew_interval = c.rebalance.interval},
      [this] { return registry.size(); },
      [this] { return accepting && downstream_ready && !stopping; },
      [this](const std::vector<ReplicaInfo>& live) { on_fleet(live); });
  devices = std::make_unique<DeviceRouter>(client, registry, metrics,
                                           DeviceRouterOptions{.enabled = c.devices.enabled});
  device_reports = std::make_unique<DeviceReports>(
      *client, *devices, metrics,
      DeviceReportsOptions{.report_window = c.devices.report_batch_window},
      [this](const std::string& node, wire::Message confirm) {
        if (auto session = registry.find(node)) {
          asio::post(session->executor(), [session, confirm = std::move(confirm)] {
            session->send(confirm);
          });
        }
      });
  upstream->set_devices(device_reports.get());
  devices->set_node_sync(node_sync.get());

  ListenerOptions lo;
  lo.host = c.hub.listen.host;
  lo.port = c.hub.listen.port;
  lo.tls = options.edge_tls;
  lo.identity_header = c.hub.proxy.identity_header;
  lo.trusted_proxies = c.hub.proxy.trusted_addresses;
  if (lo.tls && c.hub.proxy.enabled) lo.proxy_client_names = c.hub.proxy.client_names;
  lo.max_connections = c.hub.max_connections;
  lo.max_edge_descriptors = edge_descriptor_budget(c.hub.max_upstream_in_progress + 256);
  lo.max_concurrent_handshakes = c.hub.max_concurrent_handshakes;
  lo.handshake_timeout = c.hub.handshake_timeout;
  lo.hello_timeout = c.hub.hello_timeout;
  lo.max_pending = c.hub.max_pending_connections;
  lo.max_pending_per_address = c.hub.max_pending_per_address;
  lo.compact_tls_sessions = c.hub.compact_tls_sessions;
  lo.identity_check = [admission = admission](const std::string& node, const std::string& serial,
                                              pki::IdentityDone done) {
    admission->check_connect(node, serial, std::move(done));
  };
  lo.session = session_options();
  lo.session.replica_id = c.hub.id;
  std::vector<asio::any_io_executor> executors;
  for (auto& ctx : io) executors.push_back(ctx->get_executor());
  if (io.empty()) executors.push_back(api_io.get_executor());
  listener = std::make_unique<Listener>(executors, lo, *this, [this](Rejection r) {
    rejections->with({std::string(to_string(r))}).inc();
  });

  start_admin();
  if (c.hub.cert_service.enabled && options.edge_ca) {
    cert_service = std::make_unique<pki::CertService>(
        cert_io.get_executor(), options.edge_ca,
        pki::CertServiceOptions{.host = c.hub.cert_service.listen.host,
                                .port = c.hub.cert_service.listen.port,
                                .server_cert_pem = options.server_cert_pem,
                                .server_key_pem = options.server_key_pem,
                                .edge_cert_validity = std::chrono::hours(24) * c.hub.cert_service.edge_cert_days,
                                .on_connection_refused = http_refusal_counter("certificate service"),
                                .identity_check =
                                    [admission = admission](const std::string& node,
                                                            const std::string& serial,
                                                            pki::IdentityDone done) {
                                      admission->check(node, serial, std::move(done));
                                    },
                                .on_request_refused =
                                    [refusals = &metrics.counter(
                                         "edgehub_cert_service_refusals_total",
                                         "Certificate service requests refused, by reason.",
                                         {"reason"})](std::string_view reason) {
                                      refusals->with({std::string(reason)}).inc();
                                    }},
        [this](const std::string& node, std::function<void(bool, std::string)> done) {
          // From the service's thread to the API thread: ask the API server.
          asio::co_spawn(api_io, [this, node, done]() -> asio::awaitable<void> {
            const kube::RequestOptions bulk{};
            auto found = co_await client->get(kube::resources::nodes(), "", node, bulk);
            if (found) co_return done(true, "");
            if (found.error().is(kube::ErrorKind::NotFound)) co_return done(false, "");
            done(false, "cannot check node " + node + ": " + found.error().describe());
          }, asio::detached);
        });
    cert_service->start();
  }
  listener->start();
  const auto guarded = [this](asio::io_context& ctx, std::string thread) {
    return [this, &ctx, thread = std::move(thread)] {
      net::run_guarded(ctx, thread, [this, &thread] { handler_exceptions->with({thread}).inc(); });
    };
  };
  for (auto& ctx : io) threads.emplace_back(guarded(*ctx, "io"));
  threads.emplace_back(guarded(api_io, io.empty() ? "api+io" : "api"));
  threads.emplace_back(guarded(cert_io, "certificate service"));
  asio::post(api_io, [this] {
    if (node_sync) node_sync->start();
    admission->start([this] { close_revoked_sessions(); });
    downstream->start();
    audit->start();
    membership->start();
    shared_pki->start();
    devices->start();
    api_budget->start();
    schedule_trim();
  });
  accepting = true;
  spdlog::info("edgehub {} ({}) listening for edges on {}:{} ({}, {}), admin on {}:{}{}",
               kVersion, c.hub.id, c.hub.listen.host, listener->port(),
               io.empty() ? std::string("edges and API on one thread")
                          : std::to_string(io.size()) + " I/O threads and an API thread",
               !lo.tls                          ? "plain WebSocket behind a proxy"
               : lo.proxy_client_names.empty() ? "TLS, client certificates required"
                                               : "TLS behind a proxy with a client certificate",
               c.metrics.listen.host, admin->port(),
               cert_service ? ", certificate service on " + c.hub.cert_service.listen.host + ":" +
                                  std::to_string(cert_service->port())
                            : std::string());
}

// Connect storms and resyncs leave freed memory in malloc's arenas; giving it back keeps the
// resident size near what the sessions hold (~15 MiB less with 2,000 edges). Once a minute,
// on the API thread; it takes milliseconds.
void Hub::Impl::schedule_trim() {
  if (!trim_timer) trim_timer = std::make_unique<asio::steady_timer>(api_io);
  trim_timer->expires_after(std::chrono::seconds(60));
  trim_timer->async_wait([this](boost::system::error_code ec) {
    if (ec || stopping) return;
    ::malloc_trim(0);
    schedule_trim();
  });
}

std::function<void(std::string_view)> Hub::Impl::http_refusal_counter(std::string server) {
  return [this, server = std::move(server)](std::string_view reason) {
    http_refusals->with({server, std::string(reason)}).inc();
  };
}

void Hub::Impl::start_admin() {
  const auto& c = options.config;
  admin = std::make_unique<net::HttpServer>(
      api_io.get_executor(),
      net::HttpServerOptions{.host = c.metrics.listen.host,
                             .port = c.metrics.listen.port,
                             .max_connections_per_address = c.metrics.max_connections_per_address,
                             .reserved_connections = 64,
                             .reserved_paths = {"/healthz", "/readyz"},
                             .name = "admin",
                             .on_refuse = http_refusal_counter("admin")});
  for (const auto& text : c.metrics.debug_from) {
    if (auto range = net::AddressRange::parse(text)) debug_from.push_back(*range);
  }
  admin->handle("/metrics", [this](const net::HttpRequest&) {
    auto r = net::HttpResponse::text(200, metrics.expose());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  admin->handle("/healthz", [](const net::HttpRequest&) { return net::HttpResponse::text(200, "ok\n"); });
  admin->handle("/readyz", [this](const net::HttpRequest&) {
    downstream_ready = watches_ready();
    if (stopping) return net::HttpResponse::text(503, "stopping\n");
    if (!accepting) return net::HttpResponse::text(503, "edge listener not started\n");
    if (!downstream_ready) return net::HttpResponse::text(503, "API watches not established yet\n");
    return net::HttpResponse::text(200, "ok\n");
  });
  admin->handle("/debug/nodes", [this](const net::HttpRequest& request, net::Respond respond) {
    if (!net::any_contains(debug_from, request.peer_address)) {
      http_refusals->with({"admin", "debug_forbidden"}).inc();
      spdlog::info("admin: refused /debug/nodes to {}: not in metrics.debugFrom", request.peer);
      return respond(net::HttpResponse::text(403, "/debug/* is served to metrics.debugFrom only\n"));
    }
    const std::string_view prefix = "node=";
    if (request.query.starts_with(prefix)) {
      auto node = request.query.substr(prefix.size());
      if (!valid_node_name(node)) {
        http_refusals->with({"admin", "bad_request"}).inc();
        return respond(net::HttpResponse::text(400, "node= must be a node name (DNS-1123)\n"));
      }
      return debug_node(node, std::move(respond));
    }
    debug_nodes(std::move(respond));
  });
  admin->start();
}

// Asks every session on its own thread, answers when all have.
void Hub::Impl::debug_nodes(net::Respond respond) {
  auto sessions = registry.sessions();
  struct Gather {
    std::mutex mutex;
    nlohmann::json nodes = nlohmann::json::array();
    std::size_t left;
    net::Respond respond;
  };
  auto gather = std::make_shared<Gather>();
  gather->left = sessions.size();
  gather->respond = std::move(respond);
  const auto finish = [this](Gather& g) {
    nlohmann::json body = {{"replica", options.config.hub.id}, {"nodes", std::move(g.nodes)}};
    g.respond(net::HttpResponse::json(200, wire::dump_json(body, 2) + "\n"));
  };
  if (sessions.empty()) return finish(*gather);
  for (auto& s : sessions) {
    asio::post(s->executor(), [s, gather, finish] {
      const auto age = std::chrono::duration_cast<std::chrono::seconds>(
          std::chrono::steady_clock::now() - s->opened_at());
      nlohmann::json n = {{"node", s->node()},
                          {"peer", s->peer()},
                          {"connectedSeconds", age.count()},
                          {"queued", s->delivery().queued()},
                          {"awaitingAck", s->delivery().in_flight()},
                          {"messagesIn", s->counters().messages_in},
                          {"messagesOut", s->counters().messages_out},
                          {"retries", s->delivery().stats().retried}};
      std::lock_guard lock(gather->mutex);
      gather->nodes.push_back(std::move(n));
      if (--gather->left == 0) finish(*gather);
    });
  }
}

// One node in detail: its session's per-object delivery state and its NodeSync record.
void Hub::Impl::debug_node(const std::string& node, net::Respond respond) {
  asio::post(api_io, [this, node, respond = std::move(respond)]() mutable {
    nlohmann::json body = {{"replica", options.config.hub.id}, {"node", node}};
    if (const NodeSyncRecord* record = node_sync ? node_sync->record(node) : nullptr) {
      nlohmann::json objects = nlohmann::json::array();
      for (const auto& [uid, o] : record->objects) {
        objects.push_back({{"kind", record_kind(o.kind)}, {"namespace", o.ns}, {"name", o.name},
                           {"uid", uid}, {"ackedResourceVersion", o.acked_version}});
      }
      body["record"] = {{"resourceVersion", record->resource_version},
                        {"objects", std::move(objects)}};
    }
    auto session = registry.find(node);
    if (!session) {
      body["session"] = nullptr;
      return respond(net::HttpResponse::json(200, wire::dump_json(body, 2) + "\n"));
    }
    body["owning"] = registry.owns(node);
    asio::post(session->executor(), [session, body = std::move(body),
                                     respond = std::move(respond)]() mutable {
      const auto now = SteadyClock::now();
      nlohmann::json objects = nlohmann::json::array();
      for (const auto& o : session->delivery().objects()) {
        nlohmann::json j = {{"uid", o.uid}, {"ackedVersion", o.acked_version}};
        if (!o.pending_operation.empty()) {
          j["pending"] = {{"operation", o.pending_operation}, {"version", o.pending_version}};
        }
        if (!o.flight_operation.empty()) {
          j["awaitingAck"] = {
              {"operation", o.flight_operation},
              {"version", o.flight_version},
              {"sentSecondsAgo",
               std::chrono::duration<double>(now - o.flight_sent).count()}};
        }
        objects.push_back(std::move(j));
      }
      body["session"] = {{"peer", session->peer()},
                         {"id", session->id()},
                         {"closed", session->closed()},
                         {"queuedBytes", session->queued_bytes()},
                         {"messagesIn", session->counters().messages_in},
                         {"messagesOut", session->counters().messages_out},
                         {"acks", session->counters().acks},
                         {"unmatchedAcks", session->counters().unmatched_acks},
                         {"sent", session->delivery().stats().sent},
                         {"retries", session->delivery().stats().retried},
                         {"stale", session->delivery().stats().stale},
                         {"objects", std::move(objects)}};
      respond(net::HttpResponse::json(200, wire::dump_json(body, 2) + "\n"));
    });
  });
}

void Hub::Impl::on_open(const std::shared_ptr<Session>& s) {
  opened->inc();
  if (auto previous = registry.claim(s)) {
    replaced->inc();
    spdlog::info("node {}: new connection from {} replaces the one from {}", s->node(), s->peer(),
                 previous->peer());
    asio::post(previous->executor(), [previous] { previous->close(CloseReason::replaced); });
  }
  spdlog::debug("node {}: connected from {}", s->node(), s->peer());
  asio::post(api_io, [this, node = s->node(), id = s->id()] {
    // Claims are posted from the sessions' threads: one for a session replaced meanwhile
    // may arrive after its successor's, and must not claim the node for it.
    const auto current = registry.find(node);
    if (!current || current->id() != id) return;
    if (node_sync) return node_sync->claim(node, id);
    on_claimed(node, id, true, "");
  });
}

void Hub::Impl::close_revoked_sessions() {
  admission->retain([this](const std::string& node) { return registry.has_session(node); });
  for (const auto& session : registry.sessions()) {
    if (!admission->revoked(session->node())) continue;
    spdlog::warn("node {}: closing its session from {}: revoked (hub.revocation.configMap)",
                 session->node(), session->peer());
    asio::post(session->executor(), [session] { session->close(CloseReason::revoked); });
  }
}

void Hub::Impl::on_claimed(const std::string& node, std::uint64_t session_id, bool ok,
                           const std::string& reason) {
  if (!ok) {
    if (auto session = registry.find(node); session && session->id() == session_id) {
      spdlog::warn("node {}: closing its session: cannot claim the node: {}", node, reason);
      asio::post(session->executor(), [session] { session->close(CloseReason::claim_failed); });
    }
    return;
  }
  // The session may have closed meanwhile; then the record is released with it.
  if (registry.confirm(node, session_id)) {
    downstream->resync(node);
    devices->resync(node);
  }
}

void Hub::Impl::on_request(const std::shared_ptr<Session>& s, wire::Message m) {
  std::weak_ptr<Session> weak = s;
  const auto interval = options.config.hub.lease_write_interval;
  const bool lease_written_recently =
      interval.count() > 0 && s->lease_written_at() != SteadyClock::time_point{} &&
      SteadyClock::now() - s->lease_written_at() < interval;
  asio::post(api_io, [this, weak, node = s->node(), peer = s->peer(), m = std::move(m),
                      lease_written_recently]() mutable {
    std::string what = node + ": " + logging::field(m.route.operation) + " " +
                       logging::field(m.route.resource);
    upstream->submit(
        std::move(node), std::move(peer), std::move(m),
        [weak, what = std::move(what)](std::exception_ptr e, UpstreamResult result) {
          if (e) {
            // A bug, not bad input: bad input is answered with an error reply.
            std::string reason = "unknown exception";
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              reason = ex.what();
            } catch (...) {
            }
            spdlog::error("node {}: request failed unanswered: {}", what, reason);
            result = {};
          }
          auto session = weak.lock();
          if (!session) return;
          // Every request ends with request_done(): the session reads again if it paused.
          asio::post(session->executor(), [session, result = std::move(result)]() mutable {
            session->request_done();
            if (result.lease_written) session->set_lease_written_at(SteadyClock::now());
            if (result.reply) session->send(*result.reply);
            if (result.push_node) {
              const auto& n = *result.push_node;
              session->enqueue(Change{
                  .kind = ObjectKind::node,
                  .name = n.meta.name,
                  .uid = n.meta.uid,
                  .resource_version = resource_version_number(n.meta.resource_version),
                  .operation = "update",
                  .object = std::make_shared<const std::string>(with_type_meta(n, "Node", "v1"))});
            }
          });
        },
        lease_written_recently);
  });
}

void Hub::Impl::on_delivered(Session& s, const Change& c, std::chrono::steady_clock::duration d) {
  ack_latency->observe(std::chrono::duration<double>(d).count());
  if (!node_sync || c.kind == ObjectKind::node) return;
  asio::post(api_io, [this, node = s.node(), c] { node_sync->acked(node, c); });
}

void Hub::Impl::on_closed(Session& s, CloseReason r) {
  closes->with({std::string(to_string(r))}).inc();
  spdlog::debug("node {}: session from {} closed ({})", s.node(), s.peer(), to_string(r));
  if (registry.release(s)) {
    asio::post(api_io, [this, node = s.node(), id = s.id()] {
      if (registry.has_session(node)) return;
      index.drop_node(node);
      if (node_sync) node_sync->release(node, id);  // ignored once a newer session claimed
    });
  }
  std::lock_guard lock(closed_mutex);
  closed_cv.notify_all();
}

void Hub::Impl::on_fleet(const std::vector<ReplicaInfo>& live) {
  downstream_ready = watches_ready();
  if (options.config.kube.fleet_qps > 0) take_fleet_share(live);
  const auto& r = options.config.rebalance;
  if (!r.enabled || stopping) return;
  // After a hand-off, wait until the others' Leases can show the agents that moved.
  if (std::chrono::steady_clock::now() - last_shed < 2 * r.interval) return;
  std::vector<std::size_t> counts;
  for (const auto& replica : live) {
    if (replica.ready || replica.name == options.config.hub.id) counts.push_back(replica.connections);
  }
  const std::size_t backlog = client->limiter().waiting() + (listener ? listener->pending() : 0);
  const auto shed =
      rebalance_surplus(registry.size(), counts, r.tolerance, r.sessions_per_round, backlog);
  if (shed == 0) return;
  auto sessions = registry.sessions();
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->opened_at() < b->opened_at(); });
  sessions.resize(std::min(shed, sessions.size()));
  last_shed = std::chrono::steady_clock::now();
  spdlog::info("rebalance: {} sessions here, {} live replicas; handing off the {} oldest",
               registry.size(), counts.size(), sessions.size());
  for (auto& session : sessions) {
    handed_off->with({"rebalance"}).inc();
    asio::co_spawn(api_io, hand_off(session), asio::detached);
  }
}

// kube.fleetQps: this replica's part, from the live replicas' connection counts (their
// membership Leases) and its own count now.
void Hub::Impl::take_fleet_share(const std::vector<ReplicaInfo>& live) {
  const auto& k = options.config.kube;
  std::vector<std::size_t> others;
  for (const auto& replica : live) {
    if (replica.name != options.config.hub.id) others.push_back(replica.connections);
  }
  const double qps = fleet_share(k.fleet_qps, k.qps, registry.size(), others);
  auto& limiter = client->limiter();
  if (std::abs(qps - limiter.qps()) >= 0.1 * limiter.qps()) {
    spdlog::info("API budget: {:.0f} requests/s of kube.fleetQps {:g} ({} edges here, {} other "
                 "live replicas)",
                 qps, k.fleet_qps, registry.size(), others.size());
  }
  limiter.set_rate(qps, std::min(static_cast<double>(k.burst), std::max(1.0, 2 * qps)));
}

asio::awaitable<void> Hub::Impl::hand_off(std::shared_ptr<Session> session) {
  const std::string body = R"({"spec":{"renewTime":")" + micro_time_now() + R"("}})";
  auto renewed = co_await client->patch(kube::resources::leases(), "kube-node-lease",
                                        session->node(), kube::PatchType::Merge, body, kNodeLease);
  if (!renewed && !renewed.error().is(kube::ErrorKind::NotFound)) {
    spdlog::warn("node {}: cannot renew its Lease before handing it off: {}", session->node(),
                 renewed.error().describe());
  }
  asio::post(session->executor(), [session] { session->close(CloseReason::shed); });
}

void Hub::Impl::drain() {
  if (stopped || stopping) return;
  const auto& d = options.config.drain;
  const auto deadline = std::chrono::steady_clock::now() + d.deadline;
  stopping = true;  // /readyz fails from now on
  spdlog::info("edgehub draining: {} sessions, deadline {} s", registry.size(),
               std::chrono::duration_cast<std::chrono::seconds>(d.deadline).count());
  if (listener) listener->stop_accepting();
  auto done = std::make_shared<std::promise<void>>();
  asio::co_spawn(api_io, drain_sessions(deadline), [done](std::exception_ptr) { done->set_value(); });
  done->get_future().wait_until(deadline);
}

asio::awaitable<void> Hub::Impl::drain_sessions(std::chrono::steady_clock::time_point deadline) {
  using namespace std::chrono;
  auto sessions = registry.sessions();
  std::sort(sessions.begin(), sessions.end(),
            [](const auto& a, const auto& b) { return a->opened_at() < b->opened_at(); });
  // Paced so the other replicas absorb the agents without a storm, yet done well within the
  // deadline: at least the configured rate, faster if that would not finish in 3/4 of it.
  const double window = duration<double>(deadline - steady_clock::now()).count() * 0.75;
  const double rate = std::max(static_cast<double>(options.config.drain.sessions_per_second),
                               static_cast<double>(sessions.size()) / std::max(window, 0.1));
  const auto per_tick = std::max<std::size_t>(1, static_cast<std::size_t>(rate / 10));
  const auto cutoff = deadline - seconds(3);
  std::size_t next = 0;
  while (next < sessions.size() && steady_clock::now() < cutoff) {
    for (std::size_t i = 0; i < per_tick && next < sessions.size(); ++i, ++next) {
      handed_off->with({"drain"}).inc();
      asio::co_spawn(api_io, hand_off(sessions[next]), asio::detached);
    }
    co_await sleep_for(milliseconds(100));
  }
  for (; next < sessions.size(); ++next) {
    auto& s = sessions[next];
    asio::post(s->executor(), [s] { s->close(CloseReason::shutdown); });
  }
  while (registry.size() > 0 && steady_clock::now() < deadline - seconds(2)) {
    co_await sleep_for(milliseconds(50));
  }
  if (node_sync) co_await node_sync->flush_all();
  if (membership) co_await membership->leave();
  spdlog::info("edgehub drained: {} sessions left", registry.size());
}

void Hub::Impl::stop() {
  if (stopped) return;
  stopped = true;
  stopping = true;
  spdlog::info("edgehub stopping: closing {} sessions", registry.size());
  if (listener) listener->stop_accepting();
  for (auto& s : registry.sessions()) {
    asio::post(s->executor(), [s] { s->close(CloseReason::shutdown); });
  }
  if (cert_service) asio::post(cert_io, [this] { cert_service->stop(); });
  if (downstream) {
    auto done = std::make_shared<std::promise<void>>();
    asio::post(api_io, [this, done] {
      downstream->stop();
      if (audit) audit->stop();
      if (node_sync) node_sync->stop();
      if (membership) membership->stop();
      devices->stop();
      device_reports->stop();
      if (trim_timer) trim_timer->cancel();
      if (api_budget) api_budget->stop();
      if (admin) admin->stop();
      if (shared_pki) shared_pki->stop();
      if (admission) admission->stop();
      done->set_value();
    });
    done->get_future().wait_for(std::chrono::seconds(5));
  }
  // Sessions send their close frames; wait for them, bounded.
  {
    std::unique_lock lock(closed_mutex);
    closed_cv.wait_for(lock, std::chrono::seconds(5), [this] { return registry.size() == 0; });
  }
  guards.clear();
  for (auto& ctx : io) ctx->stop();
  api_io.stop();
  cert_io.stop();
  for (auto& t : threads) t.join();
  threads.clear();
  listener.reset();
  admin.reset();
  cert_service.reset();
}

Hub::Hub(HubOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Hub::~Hub() { stop(); }
void Hub::start() { impl_->start(); }
void Hub::stop() { impl_->stop(); }
void Hub::drain() { impl_->drain(); }
std::uint16_t Hub::edge_port() const { return impl_->listener ? impl_->listener->port() : 0; }
std::uint16_t Hub::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }
std::uint16_t Hub::cert_service_port() const {
  return impl_->cert_service ? impl_->cert_service->port() : 0;
}
std::size_t Hub::sessions() const { return impl_->registry.size(); }
bool Hub::ready() const {
  if (!impl_->accepting || impl_->stopping || !impl_->downstream) return false;
  auto answer = std::make_shared<std::promise<bool>>();
  auto future = answer->get_future();
  asio::post(impl_->api_io, [impl = impl_.get(), answer] {
    answer->set_value(impl->watches_ready());
  });
  return future.wait_for(std::chrono::seconds(2)) == std::future_status::ready && future.get();
}
metrics::Registry& Hub::metrics() { return impl_->metrics; }

}  // namespace edgehub::hub

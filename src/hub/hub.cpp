#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <edgehub/hub/downstream.hpp>
#include <edgehub/hub/hub.hpp>
#include <edgehub/hub/listener.hpp>
#include <edgehub/hub/registry.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/net/http_server.hpp>
#include <edgehub/pki/cert_service.hpp>
#include <edgehub/version.hpp>
#include <spdlog/spdlog.h>

#include <malloc.h>

#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <fstream>
#include <future>
#include <thread>

namespace edgehub::hub {

namespace asio = boost::asio;
using Guard = asio::executor_work_guard<asio::io_context::executor_type>;

namespace {

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

  void start();
  void stop();
  void start_admin();
  void schedule_trim();
  void debug_nodes(net::Respond respond);
  SessionOptions session_options();

  HubOptions options;
  metrics::Registry metrics;
  std::vector<std::unique_ptr<asio::io_context>> io;
  asio::io_context api_io;
  std::vector<Guard> guards;
  std::vector<std::thread> threads;
  std::shared_ptr<kube::Client> client;
  Registry registry;
  RoutingIndex index;  // API thread
  std::unique_ptr<Upstream> upstream;
  std::unique_ptr<Downstream> downstream;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<net::HttpServer> admin;
  std::unique_ptr<pki::CertService> cert_service;
  std::unique_ptr<asio::steady_timer> trim_timer;
  std::atomic<bool> accepting{false};
  std::atomic<bool> downstream_ready{false};
  std::atomic<bool> stopping{false};
  bool stopped = false;
  std::mutex closed_mutex;
  std::condition_variable closed_cv;
  metrics::Family<metrics::Counter>* closes = nullptr;
  metrics::Family<metrics::Counter>* rejections = nullptr;
  metrics::Histogram* ack_latency = nullptr;
  metrics::Counter* opened = nullptr;
  metrics::Counter* replaced = nullptr;
  std::shared_ptr<SessionMetrics> session_metrics;
};

SessionOptions Hub::Impl::session_options() {
  const auto& c = options.config;
  SessionOptions s;
  s.keepalive_timeout = c.hub.keepalive_timeout;
  s.write_queue_bytes = c.hub.write_queue_bytes;
  s.max_message_bytes = c.hub.max_message_bytes;
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
  opened = &metrics.counter("edgehub_sessions_opened_total", "Sessions opened.").with({});
  replaced = &metrics.counter("edgehub_sessions_replaced_total",
                              "Sessions closed because the node connected again.")
                  .with({});
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
  metrics.gauge_callback("edgehub_process_resident_memory_bytes", "Resident set size.",
                         [] { return resident_bytes(); });
  metrics.gauge_callback("edgehub_ready", "1 when this replica accepts edges and watches the API.",
                         [this] { return accepting && downstream_ready && !stopping ? 1.0 : 0.0; });

  const std::size_t threads_wanted =
      c.hub.io_threads != 0 ? c.hub.io_threads : std::max(1u, std::thread::hardware_concurrency());
  for (std::size_t i = 0; i < threads_wanted; ++i) {
    io.push_back(std::make_unique<asio::io_context>(1));
    guards.emplace_back(io.back()->get_executor());
  }
  guards.emplace_back(api_io.get_executor());

  auto made = kube::Client::make(api_io.get_executor(), options.kube,
                                 {.request_timeout = c.kube.request_timeout,
                                  .qps = c.kube.qps,
                                  .burst = static_cast<double>(c.kube.burst),
                                  .on_request = api_request_metrics(metrics)});
  if (!made) throw std::runtime_error("kubernetes API client: " + made.error().describe());
  client = *made;
  upstream = std::make_unique<Upstream>(*client, index, metrics, options.kube_ca_pem);
  downstream = std::make_unique<Downstream>(
      client, index, registry, metrics,
      DownstreamOptions{.max_concurrent_resyncs = c.delivery.max_concurrent_resyncs});

  ListenerOptions lo;
  lo.host = c.hub.listen.host;
  lo.port = c.hub.listen.port;
  lo.tls = c.hub.proxy.enabled ? nullptr : options.edge_tls;
  lo.identity_header = c.hub.proxy.identity_header;
  lo.trusted_proxies = c.hub.proxy.trusted_addresses;
  lo.max_connections = c.hub.max_connections;
  lo.max_concurrent_handshakes = c.hub.max_concurrent_handshakes;
  lo.handshake_timeout = c.hub.handshake_timeout;
  lo.session = session_options();
  std::vector<asio::any_io_executor> executors;
  for (auto& ctx : io) executors.push_back(ctx->get_executor());
  listener = std::make_unique<Listener>(executors, lo, *this, [this](Rejection r) {
    rejections->with({std::string(to_string(r))}).inc();
  });

  start_admin();
  if (c.hub.cert_service.enabled && options.edge_ca) {
    cert_service = std::make_unique<pki::CertService>(
        api_io.get_executor(), options.edge_ca,
        pki::CertServiceOptions{.host = c.hub.cert_service.listen.host,
                                .port = c.hub.cert_service.listen.port,
                                .server_cert_pem = options.server_cert_pem,
                                .server_key_pem = options.server_key_pem,
                                .edge_cert_validity = std::chrono::hours(24) * c.hub.cert_service.edge_cert_days},
        [this](const std::string& node, std::function<void(bool, std::string)> done) {
          // On the API thread (the service's executor): ask the API server.
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
  for (auto& ctx : io) threads.emplace_back([ctx = ctx.get()] { ctx->run(); });
  threads.emplace_back([this] { api_io.run(); });
  asio::post(api_io, [this] {
    downstream->start();
    schedule_trim();
  });
  accepting = true;
  spdlog::info("edgehub {} ({}) listening for edges on {}:{} ({} I/O threads, {}), admin on {}:{}",
               kVersion, c.hub.id, c.hub.listen.host, listener->port(), io.size(),
               lo.tls ? "TLS, client certificates required" : "plain WebSocket behind a proxy",
               c.metrics.listen.host, admin->port());
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

void Hub::Impl::start_admin() {
  const auto& c = options.config;
  admin = std::make_unique<net::HttpServer>(
      api_io.get_executor(),
      net::HttpServerOptions{.host = c.metrics.listen.host, .port = c.metrics.listen.port,
                             .name = "admin"});
  admin->handle("/metrics", [this](const net::HttpRequest&) {
    auto r = net::HttpResponse::text(200, metrics.expose());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  admin->handle("/healthz", [](const net::HttpRequest&) { return net::HttpResponse::text(200, "ok\n"); });
  admin->handle("/readyz", [this](const net::HttpRequest&) {
    downstream_ready = downstream->ready();
    if (stopping) return net::HttpResponse::text(503, "stopping\n");
    if (!accepting) return net::HttpResponse::text(503, "edge listener not started\n");
    if (!downstream_ready) return net::HttpResponse::text(503, "API watches not established yet\n");
    return net::HttpResponse::text(200, "ok\n");
  });
  admin->handle("/debug/nodes", [this](const net::HttpRequest&, net::Respond respond) {
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
    g.respond(net::HttpResponse::json(200, body.dump(2) + "\n"));
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

void Hub::Impl::on_open(const std::shared_ptr<Session>& s) {
  opened->inc();
  if (auto previous = registry.claim(s)) {
    replaced->inc();
    spdlog::info("node {}: new connection from {} replaces the one from {}", s->node(), s->peer(),
                 previous->peer());
    asio::post(previous->executor(), [previous] { previous->close(CloseReason::replaced); });
  }
  spdlog::debug("node {}: connected from {}", s->node(), s->peer());
  asio::post(api_io, [this, node = s->node()] { downstream->resync(node); });
}

void Hub::Impl::on_request(const std::shared_ptr<Session>& s, wire::Message m) {
  std::weak_ptr<Session> weak = s;
  auto node = s->node();
  asio::post(api_io, [this, weak, node = std::move(node), m = std::move(m)]() mutable {
    std::string what = node + ": " + m.route.operation + " " + m.route.resource;
    asio::co_spawn(api_io, upstream->handle(std::move(node), std::move(m)),
                   [weak, what = std::move(what)](std::exception_ptr e, UpstreamResult result) {
                     if (e) {
                       // A bug, not bad input: bad input is answered inside handle().
                       std::string reason = "unknown exception";
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& ex) {
                         reason = ex.what();
                       } catch (...) {
                       }
                       spdlog::error("node {}: request failed unanswered: {}", what, reason);
                       return;
                     }
                     auto session = weak.lock();
                     if (!session) return;
                     asio::post(session->executor(), [session, result = std::move(result)]() mutable {
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
                   });
  });
}

void Hub::Impl::on_delivered(Session&, const Change&, std::chrono::steady_clock::duration d) {
  ack_latency->observe(std::chrono::duration<double>(d).count());
}

void Hub::Impl::on_closed(Session& s, CloseReason r) {
  closes->with({std::string(to_string(r))}).inc();
  spdlog::debug("node {}: session from {} closed ({})", s.node(), s.peer(), to_string(r));
  if (registry.release(s)) {
    asio::post(api_io, [this, node = s.node()] {
      if (!registry.owns(node)) index.drop_node(node);
    });
  }
  std::lock_guard lock(closed_mutex);
  closed_cv.notify_all();
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
  if (downstream) {
    auto done = std::make_shared<std::promise<void>>();
    asio::post(api_io, [this, done] {
      downstream->stop();
      if (trim_timer) trim_timer->cancel();
      if (admin) admin->stop();
      if (cert_service) cert_service->stop();
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
  asio::post(impl_->api_io, [impl = impl_.get(), answer] { answer->set_value(impl->downstream->ready()); });
  return future.wait_for(std::chrono::seconds(2)) == std::future_status::ready && future.get();
}
metrics::Registry& Hub::metrics() { return impl_->metrics; }

}  // namespace edgehub::hub

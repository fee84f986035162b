// edgehub-sim: a fleet of simulated KubeEdge edge nodes in one process, plus the small stand-in
// hub (--serve) and dev PKI (--mint-pki) its benchmark needs.
#include <spdlog/spdlog.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <cstdio>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/sim/fake_hub.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/version.hpp>
#include <filesystem>
#include <fstream>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace edgehub;
using tcp = asio::ip::tcp;

sim::Millis seconds(double s) { return sim::Millis(static_cast<std::int64_t>(s * 1000.0)); }

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    const int p = std::stoi(text.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

// GET /state (default) or /stats on a loopback port, one request per connection;
// POST /nodes/<name>/abandon leaves that node's connection open but dead and dials again.
class StateServer {
 public:
  StateServer(asio::io_context& ioc, const tcp::endpoint& ep, sim::Fleet& fleet)
      : acceptor_(ioc, ep), fleet_(fleet) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec) return;
      serve(std::move(socket));
      accept();
    });
  }
  void serve(tcp::socket socket) {
    // Small and rare requests: served synchronously on the control thread.
    boost::system::error_code ec;
    beast::flat_buffer buffer;
    http::request<http::empty_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) return;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    const std::string target(req.target());
    constexpr std::string_view kNodes = "/nodes/", kAbandon = "/abandon";
    if (req.method() == http::verb::post && target.starts_with(kNodes) &&
        target.ends_with(kAbandon) && target.size() > kNodes.size() + kAbandon.size()) {
      const std::string node =
          target.substr(kNodes.size(), target.size() - kNodes.size() - kAbandon.size());
      const bool done = fleet_.abandon(node);
      if (!done) res.result(http::status::conflict);
      res.body() = nlohmann::json{{"node", node}, {"abandoned", done}}.dump();
    } else if (req.method() != http::verb::get) {
      res.result(http::status::method_not_allowed);
      res.body() = R"({"error":"GET / or /stats, POST /nodes/<name>/abandon"})";
    } else {
      res.body() = target == "/stats" ? fleet_.stats().to_json().dump() : fleet_.state_json().dump();
    }
    res.prepare_payload();
    res.keep_alive(false);
    http::write(socket, res, ec);
  }
  tcp::acceptor acceptor_;
  sim::Fleet& fleet_;
};

int serve(const std::string& listen, const std::string& pki_dir, int threads, bool insecure) {
  sim::FakeHubOptions options;
  if (!split_host_port(listen, options.address, options.port)) {
    spdlog::error("--serve wants HOST:PORT, got '{}'", listen);
    return 2;
  }
  options.record = false;
  std::optional<net::TlsContext> tls;
  if (!insecure) {
    tls = net::TlsContext::server({net::read_pem_file(pki_dir + "/server.crt"),
                                   net::read_pem_file(pki_dir + "/server.key"),
                                   net::read_pem_file(pki_dir + "/ca.crt"), true});
  }
  if (const auto why = sim::ensure_fd_limit(1024); !why.empty()) spdlog::warn("{}", why);
  sim::FakeHub hub(options, std::move(tls));
  hub.start(threads);
  spdlog::info("fake hub listening on {}:{} ({})", options.address, hub.port(),
               insecure ? "plain WebSocket" : "WebSocket over mutual TLS");
  asio::io_context control;
  asio::signal_set signals(control, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { control.stop(); });
  asio::steady_timer tick(control);
  std::function<void()> report = [&] {
    tick.expires_after(std::chrono::seconds(5));
    tick.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      spdlog::info("fake hub: {} sessions, {} accepted, {} TLS failures, rss {} MiB",
                   hub.sessions(), hub.accepted(), hub.handshake_failures(),
                   rss_bytes() >> 20);
      report();
    });
  };
  report();
  control.run();
  hub.stop();
  return 0;
}

int mint_pki(const std::string& dir) {
  std::filesystem::create_directories(dir);
  net::CertRequest ca_req;
  ca_req.common_name = "edgehub-sim dev CA";
  ca_req.usage = net::CertUsage::ca;
  ca_req.validity = std::chrono::hours(24 * 3650);
  auto ca = net::mint(ca_req);
  net::CertRequest server_req;
  server_req.common_name = "KubeEdge";
  server_req.organizations = {"KubeEdge"};
  server_req.usage = net::CertUsage::server;
  server_req.dns_names = {"localhost"};
  server_req.ip_addresses = {"127.0.0.1"};
  auto server = net::mint(server_req, {ca.cert.get(), ca.key.get()});
  write_file(dir + "/ca.crt", net::to_pem(ca.cert.get()));
  write_file(dir + "/ca.key", net::to_pem(ca.key.get()));
  write_file(dir + "/server.crt", net::to_pem(server.cert.get()));
  write_file(dir + "/server.key", net::to_pem(server.key.get()));
  std::filesystem::permissions(dir + "/ca.key", std::filesystem::perms::owner_read |
                                                    std::filesystem::perms::owner_write);
  std::filesystem::permissions(dir + "/server.key", std::filesystem::perms::owner_read |
                                                        std::filesystem::perms::owner_write);
  spdlog::info("wrote {}/ca.crt, ca.key, server.crt, server.key (SAN 127.0.0.1, localhost)", dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A state-dump request that arrives while certificates are still being minted must not kill
  // the process; the signal_set installed later takes SIGUSR1 over.
  std::signal(SIGUSR1, SIG_IGN);
  CLI::App app{"edgehub-sim — simulated KubeEdge edge fleet"};
  app.set_version_flag("--version", edgehub::kVersion);
  sim::SimOptions o;
  std::string server = "127.0.0.1:10000", ca_file, client_ca, client_ca_key, state_dump,
              state_listen, report_file, serve_addr, pki_dir, mint_dir, cert_service,
              log_level = "info";
  double keepalive = 15, lease = 10, status_report = 300, reconnect = 30, reconnect_max = 120,
         handshake_timeout = 30, request_timeout = 60, start_spread = 0, flap = 0, slow_ms = 0,
         duration = 0, progress = 10, trim = 10, twin_every = 0;
  int serve_threads = 1;
  app.add_option("--server", server, "hub address HOST:PORT")->capture_default_str();
  app.add_option("--nodes", o.nodes, "simulated nodes in this process")->capture_default_str();
  app.add_option("--prefix", o.prefix, "node name prefix")->capture_default_str();
  app.add_option("--first-index", o.first_index, "number of the first node (<prefix><n>)");
  app.add_option("--project-id", o.project_id, "KubeEdge project id in the URL path");
  app.add_flag("--insecure", o.insecure, "plain ws:// (no TLS)");
  app.add_option("--ca", ca_file, "CA that signed the hub's certificate (no check without it)");
  app.add_flag("--verify-hostname", o.verify_hostname, "check the hub cert against HOST");
  app.add_option("--client-ca", client_ca,
                 "CA certificate to mint node client certs with (default: --ca)");
  app.add_option("--client-ca-key", client_ca_key, "its private key");
  app.add_option("--certs-dir", o.certs_dir, "or: folder with <node>.crt and <node>.key");
  app.add_option("--token", o.token,
                 "join as `keadm join --token` does: CA from --cert-service pinned by the "
                 "token's hash, each node's certificate signed there");
  app.add_option("--cert-service", cert_service,
                 "the hub's certificate service HOST:PORT (:10002); with it, certificates are "
                 "renewed there before they expire");
  app.add_option("--rotate-at", o.rotate_at,
                 "renew after this fraction of a certificate's life (default: random 0.7-0.9, "
                 "as edgecore)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_flag("--unique-keys", o.unique_keys,
               "mint a key pair per node (default: one shared key, a certificate per node)");
  app.add_option("--source-addrs", o.source_addrs,
                 "spread connections over 127.0.0.2..127.0.0.<N+1> (past 64k ports per hub)");
  app.add_option("--io-threads", o.io_threads, "I/O threads")->capture_default_str();
  app.add_option("--max-connecting", o.max_connecting, "concurrent dials per I/O thread")
      ->capture_default_str();
  app.add_option("--keepalive", keepalive, "keepalive interval, s")->capture_default_str();
  app.add_option("--lease-renew", lease, "lease renew interval, s")->capture_default_str();
  app.add_option("--status-report", status_report, "node status patch at least every, s")
      ->capture_default_str();
  app.add_option("--reconnect-delay", reconnect, "first reconnect delay, s (doubles, ±20% jitter)")
      ->capture_default_str();
  app.add_option("--reconnect-max", reconnect_max, "reconnect delay cap, s")->capture_default_str();
  app.add_option("--handshake-timeout", handshake_timeout, "dial+TLS+upgrade timeout, s")
      ->capture_default_str();
  app.add_option("--request-timeout", request_timeout, "upstream request timeout, s")
      ->capture_default_str();
  app.add_option("--start-spread", start_spread, "spread the first dials over this many s");
  app.add_option("--drop-acks", o.drop_acks, "probability of not ACKing a cloud message")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--flap-every", flap, "drop each connection after ~S s (±50%), then reconnect");
  app.add_option("--slow-reader", slow_ms, "pause MS milliseconds after each received message");
  app.add_option("--twin-every", twin_every,
                 "report the twins of each member device every S s (0: never)");
  app.add_option("--state-dump", state_dump, "write node state JSON here on SIGUSR1 and at exit");
  app.add_option("--state-listen", state_listen,
                 "serve state on HTTP at HOST:PORT (GET /, GET /stats, POST /nodes/<n>/abandon)");
  app.add_option("--report", report_file, "write the final figures as JSON here");
  app.add_option("--duration", duration, "exit after S seconds (0: until SIGINT/SIGTERM)");
  app.add_option("--progress-interval", progress, "log line interval when not on a TTY, s");
  app.add_option("--malloc-trim", trim,
                 "give freed heap pages back to the OS every S s (0: never)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--serve", serve_addr,
                 "run the stand-in hub on HOST:PORT instead (needs --pki-dir or --insecure)");
  app.add_option("--serve-threads", serve_threads, "I/O threads of --serve");
  app.add_option("--pki-dir", pki_dir, "ca.crt, server.crt, server.key for --serve");
  app.add_option("--mint-pki", mint_dir, "write a dev CA and hub certificate into DIR and exit");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));

  try {
    if (!mint_dir.empty()) return mint_pki(mint_dir);
    if (!serve_addr.empty()) {
      if (!o.insecure && pki_dir.empty()) {
        spdlog::error("--serve needs --pki-dir (see --mint-pki) or --insecure");
        return 2;
      }
      return serve(serve_addr, pki_dir, serve_threads, o.insecure);
    }
    if (!split_host_port(server, o.host, o.port)) {
      spdlog::error("--server wants HOST:PORT, got '{}'", server);
      return 2;
    }
    if (!cert_service.empty() && !split_host_port(cert_service, o.cert_service_host,
                                                  o.cert_service_port)) {
      spdlog::error("--cert-service wants HOST:PORT, got '{}'", cert_service);
      return 2;
    }
    if (!o.token.empty() && cert_service.empty()) {
      spdlog::error("--token needs --cert-service HOST:PORT (the hub's certificate service)");
      return 2;
    }
    if (!ca_file.empty()) o.server_ca_pem = net::read_pem_file(ca_file);
    if (!client_ca.empty()) o.client_ca_cert_pem = net::read_pem_file(client_ca);
    if (!client_ca_key.empty()) o.client_ca_key_pem = net::read_pem_file(client_ca_key);
    // One CA for both sides is the usual setup (`edgehub --dev`): --ca then also mints.
    if (client_ca.empty() && !client_ca_key.empty()) o.client_ca_cert_pem = o.server_ca_pem;
    o.keepalive = seconds(keepalive);
    o.lease_renew = seconds(lease);
    o.status_report = seconds(status_report);
    o.reconnect_delay = seconds(reconnect);
    o.reconnect_max = seconds(reconnect_max);
    o.handshake_timeout = seconds(handshake_timeout);
    o.request_timeout = seconds(request_timeout);
    o.start_spread = seconds(start_spread);
    o.flap_every = seconds(flap);
    o.slow_reader = sim::Millis(static_cast<std::int64_t>(slow_ms));
    o.twin_every = seconds(twin_every);
    if (o.nodes < 1) {
      spdlog::error("--nodes must be at least 1");
      return 2;
    }
    // One fd per node, plus the process's own (logs, listeners, epoll, eventfds).
    if (const auto why = sim::ensure_fd_limit(static_cast<std::uint64_t>(o.nodes) + 64);
        !why.empty()) {
      spdlog::error("cannot run {} nodes: {}", o.nodes, why);
      return 2;
    }

    const std::uint64_t rss_before = rss_bytes();
    sim::Fleet fleet(o);
    const auto start_begin = std::chrono::steady_clock::now();
    fleet.start();
    // With --token, start() got every node's certificate from the certificate service.
    const double join_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_begin).count();
    if (!o.token.empty()) {
      spdlog::info("edgehub-sim: {} nodes joined with the token in {:.2f} s ({:.0f} certificates/s)",
                   o.nodes, join_s, o.nodes / std::max(join_s, 1e-9));
    }
    spdlog::info("edgehub-sim: {} nodes {}{}..{} → {}://{}:{}, {} I/O thread(s)", o.nodes,
                 o.prefix, o.first_index, o.first_index + o.nodes - 1,
                 o.insecure ? "ws" : "wss", o.host, o.port, o.io_threads);

    asio::io_context control;
    auto dump_state = [&] {
      if (state_dump.empty()) return;
      write_file(state_dump, fleet.state_json().dump(1));
      spdlog::info("state written to {}", state_dump);
    };
    asio::signal_set stop_signals(control, SIGINT, SIGTERM);
    stop_signals.async_wait([&](auto, int) { control.stop(); });
    asio::signal_set usr1(control, SIGUSR1);
    std::function<void()> wait_usr1 = [&] {
      usr1.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        dump_state();
        wait_usr1();
      });
    };
    wait_usr1();
    std::optional<StateServer> state_server;
    if (!state_listen.empty()) {
      std::string host;
      std::uint16_t port = 0;
      if (!split_host_port(state_listen, host, port)) {
        spdlog::error("--state-listen wants HOST:PORT, got '{}'", state_listen);
        return 2;
      }
      state_server.emplace(control, tcp::endpoint(asio::ip::make_address(host), port), fleet);
      // With port 0 the chosen port is only known here; tests read it from this line.
      spdlog::info("state served on http://{}:{}", host, state_server->port());
    }
    asio::steady_timer deadline(control);
    if (duration > 0) {
      deadline.expires_after(seconds(duration));
      deadline.async_wait([&](boost::system::error_code ec) {
        if (!ec) control.stop();
      });
    }
    const bool tty = isatty(STDERR_FILENO) == 1;
    const auto started = std::chrono::steady_clock::now();
    auto last = fleet.stats();
    auto last_time = started;
    auto last_log = started;
    auto last_trim = started;
    asio::steady_timer tick(control);
    std::function<void()> on_tick = [&] {
      tick.expires_after(std::chrono::seconds(1));
      tick.async_wait([&](boost::system::error_code ec) {
        if (ec) return;
        const auto now = std::chrono::steady_clock::now();
        const auto s = fleet.stats();
        const double dt = std::chrono::duration<double>(now - last_time).count();
        const double in = static_cast<double>(s.msgs_in - last.msgs_in) / dt;
        const double out = static_cast<double>(s.msgs_out - last.msgs_out) / dt;
        const double cps = static_cast<double>(s.connects - last.connects) / dt;
        const auto line = fmt::format(
            "connected {}/{}  {:.0f} conn/s  in {:.0f}/s out {:.0f}/s  down p50 {:.1f} p99 {:.1f} ms"
            "  rtt p50 {:.1f} p99 {:.1f} ms  reconnects {}  failures {}",
            s.connected, s.target, cps, in, out, s.downstream.p50_ms, s.downstream.p99_ms,
            s.upstream.p50_ms, s.upstream.p99_ms, s.reconnects, s.connect_failures);
        if (tty) {
          std::fprintf(stderr, "\r\033[K%s", line.c_str());
          std::fflush(stderr);
        } else if (now - last_log >= seconds(progress)) {
          spdlog::info("{}", line);
          last_log = now;
        }
        // TLS handshakes and message bursts free memory all over glibc's heap; without a trim
        // those pages stay resident although idle nodes need none of them.
        if (trim > 0 && now - last_trim >= seconds(trim)) {
          malloc_trim(0);
          last_trim = now;
        }
        last = s;
        last_time = now;
        on_tick();
      });
    };
    on_tick();
    control.run();
    if (tty) std::fprintf(stderr, "\n");

    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started);
    const std::uint64_t rss_running = rss_bytes();
    auto report = fleet.stats().to_json();
    fleet.stop();
    dump_state();
    report["elapsed_s"] = elapsed.count();
    if (!o.token.empty()) report["join_s"] = join_s;
    report["rss_bytes"] = rss_running;
    report["rss_before_start_bytes"] = rss_before;
    report["rss_per_node_bytes"] =
        static_cast<double>(rss_running - std::min(rss_running, rss_before)) / o.nodes;
    spdlog::info("edgehub-sim report: {}", report.dump());
    if (!report_file.empty()) write_file(report_file, report.dump(2) + "\n");
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("edgehub-sim: {}", e.what());
    return 1;
  }
}

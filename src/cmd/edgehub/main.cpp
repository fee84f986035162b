// edgehub: the cloud-side hub for KubeEdge edge agents. main() only parses flags, loads the
// configuration and hands over to the modules.
#include <CLI/CLI.hpp>
#include <edgehub/config/config.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/hub.hpp>
#include <edgehub/kube/config.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>
#include <edgehub/version.hpp>
#include <spdlog/spdlog.h>

#include <pthread.h>

#include <csignal>
#include <fstream>
#include <filesystem>
#include <iostream>

#include "status.hpp"

namespace {

struct Options {
  std::string config_file;
  bool check = false;
  edgehub::config::Overrides overrides;
};

void add_run_flags(CLI::App& app, Options& o) {
  app.add_option("-c,--config", o.config_file, "Configuration file (YAML); defaults if omitted");
  app.add_flag("--check", o.check, "Validate the configuration and exit 0 (valid) or 1");
  app.add_flag("--dev", o.overrides.dev,
               "Development mode: embedded API server and dev certificates, loopback only");
  app.add_option("--kubeconfig", o.overrides.kubeconfig, "Kubeconfig file (kube.kubeconfig)");
  app.add_option("--listen", o.overrides.listen, "Edge WebSocket address HOST:PORT (hub.listen)");
  app.add_option("--metrics-listen", o.overrides.metrics_listen,
                 "Metrics and health address HOST:PORT (metrics.listen)");
  app.add_option("--cert-service-listen", o.overrides.cert_service_listen,
                 "Certificate service address HOST:PORT (hub.certService.listen)");
  app.add_option("--dev-api-listen", o.overrides.dev_api_listen,
                 "--dev: embedded API server address HOST:PORT (dev.apiListen)");
  app.add_option("--hub-id", o.overrides.hub_id, "Replica identity (hub.id)");
  app.add_option("--log-level", o.overrides.log_level,
                 "trace, debug, info, warn or error (log.level)");
  app.add_option("--log-format", o.overrides.log_format, "text or json (log.format)");
}

// Blocks the signals every thread would otherwise get; main() waits for them with sigwait.
sigset_t block_stop_signals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(what) + " " + path + " cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// --dev promises loopback only, whatever the built-in defaults (0.0.0.0) or a configuration
// file say: its CA key and join token sit in certs/dev and its API server takes anyone.
void keep_to_loopback(edgehub::config::Config& config) {
  for (auto [key, address] :
       {std::pair{"hub.listen", &config.hub.listen},
        std::pair{"hub.certService.listen", &config.hub.cert_service.listen},
        std::pair{"metrics.listen", &config.metrics.listen},
        std::pair{"dev.apiListen", &config.dev.api_listen}}) {
    if (loopback(address->host)) continue;
    const std::string was = address->host;
    address->host = was.find(':') != std::string::npos ? "::1" : "127.0.0.1";
    spdlog::info("dev mode: {} {} changed to loopback {} (--dev listens on loopback only)", key,
                 was, address->host);
  }
}

// --dev: the dev PKI and the embedded API server, with a kubeconfig for kubectl.
std::unique_ptr<edgehub::devapi::Server> start_dev_api(edgehub::config::Config& config) {
  keep_to_loopback(config);
  const auto pki = edgehub::pki::init_dev_pki({.dir = config.dev.certs_dir});
  if (pki.created_ca) spdlog::info("dev PKI: created a CA in {}", config.dev.certs_dir);
  config.hub.tls = {pki.server_cert_file, pki.server_key_file, pki.ca_cert_file};
  config.hub.cert_service.ca_cert_file = pki.ca_cert_file;
  config.hub.cert_service.ca_key_file = pki.ca_key_file;
  auto api = std::make_unique<edgehub::devapi::Server>(edgehub::devapi::ServerOptions{
      .host = config.dev.api_listen.host, .port = config.dev.api_listen.port});
  api->start();
  const auto kubeconfig = config.dev.kubeconfig_out;
  if (const auto dir = std::filesystem::path(kubeconfig).parent_path(); !dir.empty()) {
    std::filesystem::create_directories(dir);
  }
  api->write_kubeconfig(kubeconfig);
  config.kube.kubeconfig = kubeconfig;
  config.kube.context.clear();
  spdlog::info("dev mode: embedded API server on {}; kubectl --kubeconfig {} get nodes", api->url(),
               kubeconfig);
  return api;
}

int serve(edgehub::config::Config config) {
  const auto stop_signals = block_stop_signals();
  std::unique_ptr<edgehub::devapi::Server> dev_api;
  if (config.dev_mode) dev_api = start_dev_api(config);

  edgehub::hub::HubOptions options;
  auto kube = config.kube.kubeconfig.empty()
                  ? edgehub::kube::load_in_cluster()
                  : edgehub::kube::load_kubeconfig(config.kube.kubeconfig, config.kube.context);
  if (!kube) throw std::runtime_error(kube.error().describe());
  options.kube = *kube;
  options.kube_ca_pem = kube->ca_pem;
  // With hub.certService.caSecret the hub issues its TLS material from the Secret's CA.
  const bool ca_from_secret = !config.hub.cert_service.ca_secret.empty();
  if (!config.hub.proxy.enabled && !ca_from_secret) {
    options.edge_tls = std::make_shared<edgehub::net::TlsContext>(edgehub::net::TlsContext::server(
        {.cert_chain_pem = read_file(config.hub.tls.cert_file, "hub.tls.certFile"),
         .private_key_pem = read_file(config.hub.tls.key_file, "hub.tls.keyFile"),
         .client_ca_pem = read_file(config.hub.tls.client_ca_file, "hub.tls.clientCAFile")}));
  }
  // Mutual TLS with the ingress: the edge port serves the hub's certificate to it.
  const bool proxy_tls = config.hub.proxy.enabled && !config.hub.proxy.client_ca_file.empty();
  if (proxy_tls) {
    options.proxy_client_ca_pem = read_file(config.hub.proxy.client_ca_file, "hub.proxy.clientCAFile");
  }
  if (config.hub.cert_service.enabled && !ca_from_secret) {
    options.edge_ca = std::make_shared<const edgehub::pki::CertificateAuthority>(
        edgehub::pki::CertificateAuthority::load(config.hub.cert_service.ca_cert_file,
                                                 config.hub.cert_service.ca_key_file));
  }
  if ((config.hub.cert_service.enabled || proxy_tls) && !ca_from_secret) {
    options.server_cert_pem = read_file(config.hub.tls.cert_file, "hub.tls.certFile");
    options.server_key_pem = read_file(config.hub.tls.key_file, "hub.tls.keyFile");
  }
  options.config = config;
  edgehub::hub::Hub hub(std::move(options));
  hub.start();
  int signal = 0;
  sigwait(&stop_signals, &signal);
  if (signal == SIGTERM) {
    spdlog::info("edgehub: SIGTERM received, draining");
    hub.drain();
  } else {
    spdlog::info("edgehub: SIGINT received, stopping");
  }
  hub.stop();
  if (dev_api) dev_api->stop();
  return 0;
}

int run(const Options& o) {
  auto loaded = edgehub::config::load(o.config_file, o.overrides);
  if (!loaded) {
    for (const auto& error : loaded.error()) std::cerr << "edgehub: " << error.to_string() << "\n";
    return 1;
  }
  if (o.check) {
    std::cout << (o.config_file.empty() ? "defaults" : o.config_file) << ": OK\n";
    return 0;
  }
  auto config = *loaded;
  edgehub::logging::setup(config.log.level, config.log.format);
  try {
    return serve(config);
  } catch (const std::exception& e) {
    spdlog::error("edgehub: {}", e.what());
    return 1;
  }
}

struct CertsInit {
  edgehub::pki::DevPkiOptions options;
};

int certs_init(const CertsInit& c) {
  try {
    const auto r = edgehub::pki::init_dev_pki(c.options);
    std::cout << (r.created_ca ? "created " : "kept    ") << r.ca_cert_file << ", " << r.ca_key_file
              << "\n"
              << (r.issued_server_cert ? "issued  " : "kept    ") << r.server_cert_file << ", "
              << r.server_key_file << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "edgehub certs init: " << e.what() << "\n";
    return 1;
  }
}

struct TokenCreate {
  std::string ca_cert = "certs/dev/ca.crt";
  std::string ca_key = "certs/dev/ca.key";
  std::string ttl = "24h";
};

int token_create(const TokenCreate& t) {
  const auto ttl = edgehub::config::parse_duration(t.ttl);
  if (!ttl || ttl->count() < 1000) {
    std::cerr << "edgehub token create: --ttl: "
              << (ttl ? "\"" + t.ttl + "\" is shorter than a second" : ttl.error().text) << "\n";
    return 1;
  }
  try {
    const auto ca = edgehub::pki::CertificateAuthority::load(t.ca_cert, t.ca_key);
    std::cout << edgehub::pki::create_token(
                     ca, std::chrono::duration_cast<std::chrono::seconds>(*ttl))
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "edgehub token create: " << e.what() << "\n";
    return 1;
  }
}

// `edgehub devapi`: the embedded API server alone, as a process the e2e tests and benchmarks
// can kill and restart like a real kube-apiserver.
struct DevApi {
  std::string listen = "127.0.0.1:6443";
  std::string kubeconfig_out;
  std::string data_file;
  std::string tls_cert, tls_key, tls_ca;
  std::size_t watch_history = 10000;
  std::string log_level = "info";
};

int devapi(const DevApi& d) {
  // Blocked before any thread starts, so that only sigwait below receives them.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  edgehub::logging::setup(d.log_level, "text");
  const auto address = edgehub::config::parse_host_port(d.listen);
  if (!address) {
    std::cerr << "edgehub devapi: --listen: " << address.error().text << "\n";
    return 1;
  }
  try {
    edgehub::devapi::ServerOptions options;
    options.host = address->host;
    options.port = address->port;
    options.watch_history = d.watch_history;
    options.tls_cert_file = d.tls_cert;
    options.tls_key_file = d.tls_key;
    options.tls_ca_file = d.tls_ca;
    edgehub::devapi::Server server(options);
    if (!d.data_file.empty() && std::filesystem::exists(d.data_file)) {
      server.store().load(d.data_file);
      spdlog::info("devapi: state loaded from {} (resourceVersion {})", d.data_file,
                   server.store().current_resource_version());
    }
    server.start();
    if (!d.kubeconfig_out.empty()) server.write_kubeconfig(d.kubeconfig_out);
    for (;;) {
      int signal = 0;
      sigwait(&set, &signal);
      if (signal != SIGUSR1) break;
      // Watch history expired: every watch is ended and can only resume with a fresh list.
      server.expire_history();
      server.drop_watchers();
      spdlog::info("devapi: SIGUSR1: watch history expired at resourceVersion {}, watches closed",
                   server.store().current_resource_version());
    }
    server.stop();
    if (!d.data_file.empty()) {
      server.store().save(d.data_file);
      spdlog::info("devapi: state saved to {} (resourceVersion {})", d.data_file,
                   server.store().current_resource_version());
    }
    return 0;
  } catch (const std::exception& e) {
    spdlog::error("edgehub devapi: {}", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgehub — cloud hub for KubeEdge edge nodes (WebSocket+TLS on :10000)"};
  app.set_version_flag("--version", edgehub::kVersion);
  Options options;
  add_run_flags(app, options);

  auto* reference = app.add_subcommand(
      "config-reference", "Print every configuration key with its default (Markdown)");

  auto* certs = app.add_subcommand("certs", "Certificates for the edge port");
  auto* init = certs->add_subcommand(
      "init", "Create a CA (kept if present) and a server certificate signed by it");
  CertsInit certs_options;
  init->add_option("--dir", certs_options.options.dir, "Output folder")->capture_default_str();
  init->add_option("--san", certs_options.options.sans,
                   "Extra DNS name or IP address edges dial (repeatable); localhost, "
                   "127.0.0.1 and ::1 are always included");
  init->add_flag("--force", certs_options.options.force, "Re-issue the server certificate");
  certs->require_subcommand(1);

  auto* token = app.add_subcommand("token", "KubeEdge join tokens for `keadm join --token`");
  auto* create = token->add_subcommand("create", "Print a join token signed with the CA key");
  TokenCreate token_options;
  create->add_option("--ca-cert", token_options.ca_cert, "CA certificate (PEM)")
      ->capture_default_str();
  create->add_option("--ca-key", token_options.ca_key, "CA private key (PEM)")
      ->capture_default_str();
  create->add_option("--ttl", token_options.ttl, "Validity, e.g. 24h, 30m")->capture_default_str();
  token->require_subcommand(1);

  auto* status = app.add_subcommand("status", "Replicas, their connections and health, from their membership Leases");
  edgehub::cmd::StatusOptions status_options;
  status->add_option("--kubeconfig", status_options.kubeconfig,
                     "Kubeconfig file; empty means the in-cluster service account");
  status->add_option("--context", status_options.context, "Kubeconfig context");
  status->add_option("-n,--namespace", status_options.ns, "Namespace of the replicas (hub.namespace)")
      ->capture_default_str();

  auto* devapi_cmd = app.add_subcommand(
      "devapi",
      "Run only the embedded Kubernetes API server (as --dev does); SIGUSR1 expires its watch "
      "history, SIGTERM/SIGINT stop it (saving --data-file)");
  DevApi devapi_options;
  devapi_cmd->add_option("--listen", devapi_options.listen, "HOST:PORT")->capture_default_str();
  devapi_cmd->add_option("--kubeconfig-out", devapi_options.kubeconfig_out,
                         "Write a kubeconfig for clients here");
  devapi_cmd->add_option("--data-file", devapi_options.data_file,
                         "Load the state from this file at start (if it exists), save it at stop");
  devapi_cmd->add_option("--tls-cert-file", devapi_options.tls_cert, "Serve HTTPS: certificate");
  devapi_cmd->add_option("--tls-key-file", devapi_options.tls_key, "Serve HTTPS: private key");
  devapi_cmd->add_option("--tls-ca-file", devapi_options.tls_ca, "CA written into the kubeconfig");
  devapi_cmd->add_option("--watch-history", devapi_options.watch_history,
                         "Events kept for watches resuming from a resourceVersion")
      ->capture_default_str();
  devapi_cmd->add_option("--log-level", devapi_options.log_level, "trace … error")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (devapi_cmd->parsed()) return devapi(devapi_options);
  if (init->parsed()) return certs_init(certs_options);
  if (create->parsed()) return token_create(token_options);
  if (status->parsed()) return edgehub::cmd::print_status(status_options);
  if (reference->parsed()) {
    std::cout << edgehub::config::reference_markdown();
    return 0;
  }
  return run(options);
}

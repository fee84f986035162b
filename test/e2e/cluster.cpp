#include "cluster.hpp"

#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http.hpp"

namespace edgehub::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("e2e: cannot write " + path);
}

// `load_module ...;` for the stream module, found from `nginx -V` (Debian builds it as a
// dynamic module in --modules-path); empty when nginx has it built in.
std::string stream_module_line(const std::string& nginx) {
  const auto v = test::run({nginx, "-V"}, 10s);
  const std::string text = v.out + v.err;
  std::vector<std::string> dirs;
  const std::string key = "--modules-path=";
  if (const auto at = text.find(key); at != std::string::npos) {
    const auto end = text.find_first_of(" \n", at);
    dirs.push_back(text.substr(at + key.size(), end - at - key.size()));
  }
  for (const char* d : {"/usr/lib/nginx/modules", "/usr/lib64/nginx/modules",
                        "/usr/share/nginx/modules"}) {
    dirs.emplace_back(d);
  }
  for (const auto& dir : dirs) {
    const fs::path so = fs::path(dir) / "ngx_stream_module.so";
    if (fs::exists(so)) return "load_module " + so.string() + ";\n";
  }
  if (text.find("--with-stream ") != std::string::npos ||
      text.find("--with-stream\n") != std::string::npos) {
    return {};
  }
  throw std::runtime_error(
      "e2e: nginx has no stream module (Debian: libnginx-mod-stream, see "
      "scripts/install-deps.sh)");
}

}  // namespace

Cluster::Cluster(ClusterOptions options) : options_(std::move(options)) {
  if (options_.declared_replicas < options_.replicas) options_.declared_replicas = options_.replicas;
  dir_ = fs::temp_directory_path() /
         ("edgehub-e2e-" + options_.name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir_);
  fs::create_directories(dir_);
  static const char* kIds[] = {"hub-a", "hub-b", "hub-c", "hub-d", "hub-e", "hub-f"};
  for (int i = 0; i < options_.declared_replicas; ++i) {
    Replica r;
    r.id = kIds[i % 6];
    r.edge_port = test::free_port();
    r.admin_port = test::free_port();
    replicas_.push_back(std::move(r));
  }
  api_port_ = test::free_port();
  nginx_port_ = test::free_port();
  sim_port_ = test::free_port();
}

Cluster::~Cluster() {
  // Stop order: the fleet first (its goodbyes reach live replicas), then the rest.
  if (sim_) {
    sim_->signal(SIGTERM);
    sim_->wait(10s);
  }
  for (auto& r : replicas_) {
    if (r.process) {
      r.process->signal(SIGTERM);
      if (!r.process->wait(5s)) r.process.reset();  // SIGKILL
    }
  }
  if (nginx_) {
    nginx_->signal(SIGQUIT);
    nginx_->wait(5s);
  }
  api_.reset();
  if (devapi_) {
    devapi_->signal(SIGTERM);
    devapi_->wait(10s);
  }
}

void Cluster::make_pki() {
  const auto out = test::run({test::binary("edgehub"), "certs", "init", "--dir", dir_ + "/pki"});
  if (out.exit_code != 0) throw std::runtime_error("e2e: certs init failed: " + out.err);
}

void Cluster::start_api() {
  devapi_ = std::make_unique<test::Child>(
      std::vector<std::string>{test::binary("edgehub"), "devapi", "--listen",
                               "127.0.0.1:" + std::to_string(api_port_), "--kubeconfig-out",
                               dir_ + "/kubeconfig", "--data-file", dir_ + "/api-state.json"},
      log("devapi"));
  const bool up = eventually(
      [&] {
        auto r = http_get(api_port_, "/healthz");
        return r && r->status == 200 && fs::exists(dir_ + "/kubeconfig");
      },
      30s, 50ms);
  if (!up) throw std::runtime_error("e2e: devapi did not come up; see " + log("devapi"));
}

void Cluster::start_control_plane() {
  make_pki();
  start_api();
  api_ = std::make_unique<Api>(dir_ + "/kubeconfig");
  for (const char* ns : {kNamespace, kHubNamespace}) {
    const json body = {{"metadata", {{"name", ns}}}};
    api_->call("POST", "/api/v1/namespaces", body);
  }
  for (int i = 0; i < options_.replicas; ++i) start_replica(static_cast<std::size_t>(i));
  start_nginx();
}

void Cluster::write_replica_config(Replica& r) {
  r.config_file = dir_ + "/" + r.id + ".yaml";
  std::ostringstream y;
  y << "hub:\n"
    << "  id: " << r.id << "\n"
    << "  namespace: " << kHubNamespace << "\n"
    << "  advertiseAddress: 127.0.0.1\n"
    << "  listen: 127.0.0.1:" << r.edge_port << "\n"
    << "  tls:\n"
    << "    certFile: " << dir_ << "/pki/server.crt\n"
    << "    keyFile: " << dir_ << "/pki/server.key\n"
    << "    clientCAFile: " << dir_ << "/pki/ca.crt\n"
    << "  certService:\n    enabled: false\n"
    << "  ioThreads: 1\n"
    << "  keepaliveTimeout: " << options_.keepalive_timeout << "\n"
    << "kube:\n"
    << "  kubeconfig: " << dir_ << "/kubeconfig\n"
    << "  qps: 1000\n  burst: 2000\n"
    << "metrics:\n  listen: 127.0.0.1:" << r.admin_port << "\n"
    << "delivery:\n  retryInterval: 2s\n  nodeSyncInterval: 1s\n"
    << "drain:\n  deadline: " << options_.drain_deadline << "\n  sessionsPerSecond: 100\n"
    << "rebalance:\n  enabled: true\n  tolerance: 0.1\n  sessionsPerRound: 20\n"
    << "  interval: 2s\n"
    << "log:\n  level: info\n";
  write_text(r.config_file, y.str());
}

void Cluster::start_replica(std::size_t index) {
  Replica& r = replicas_.at(index);
  write_replica_config(r);
  r.process = std::make_unique<test::Child>(
      std::vector<std::string>{test::binary("edgehub"), "--config", r.config_file}, log(r.id));
  const bool ready = eventually(
      [&] {
        if (!r.process->running()) return false;
        auto res = http_get(r.admin_port, "/readyz");
        if (!res || res->status != 200) return false;
        // And it is this replica that answers on that port.
        const auto nodes = http_get(r.admin_port, "/debug/nodes");
        return nodes && nodes->status == 200 &&
               json::parse(nodes->body, nullptr, false).value("replica", "") == r.id;
      },
      30s, 50ms);
  if (!ready) throw std::runtime_error("e2e: replica " + r.id + " not ready; see " + log(r.id));
}

void Cluster::write_nginx_config() {
  const std::string nginx = test::find_program("nginx");
  std::ostringstream c;
  c << stream_module_line(nginx)  //
    << "daemon off;\nmaster_process on;\nworker_processes 1;\nworker_rlimit_nofile 65536;\n"
    << "pid " << dir_ << "/nginx/nginx.pid;\n"
    << "error_log " << dir_ << "/nginx/error.log notice;\n"
    << "events { worker_connections 32768; }\n"
    << "stream {\n"
    << "  upstream edgehub {\n"
    << "    least_conn;\n";
  for (const auto& r : replicas_) {
    c << "    server 127.0.0.1:" << r.edge_port << " max_fails=1 fail_timeout=1s;\n";
  }
  c << "  }\n"
    << "  server {\n"
    << "    listen 127.0.0.1:" << nginx_port_ << ";\n"
    << "    proxy_pass edgehub;\n"
    << "    proxy_connect_timeout 1s;\n"
    << "    proxy_timeout 1h;\n"
    << "    proxy_next_upstream on;\n"
    << "    proxy_next_upstream_tries 0;\n"
    << "  }\n"
    << "}\n";
  fs::create_directories(dir_ + "/nginx");
  write_text(dir_ + "/nginx/nginx.conf", c.str());
}

void Cluster::start_nginx() {
  const std::string nginx = test::find_program("nginx");
  if (nginx.empty()) {
    throw std::runtime_error("e2e: nginx not found (Debian: nginx-light, see "
                             "scripts/install-deps.sh)");
  }
  write_nginx_config();
  nginx_ = std::make_unique<test::Child>(
      std::vector<std::string>{nginx, "-p", dir_ + "/nginx/", "-c", dir_ + "/nginx/nginx.conf",
                               "-e", dir_ + "/nginx/error.log"},
      log("nginx"));
  const bool up = eventually(
      [&] {
        if (!nginx_->running()) return false;
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket s(io);
        boost::system::error_code ec;
        s.connect({boost::asio::ip::make_address("127.0.0.1"), nginx_port_}, ec);
        return !ec;
      },
      15s, 50ms);
  if (!up) throw std::runtime_error("e2e: nginx did not start; see " + dir_ + "/nginx/error.log");
}

void Cluster::start_fleet() {
  std::ostringstream delay;
  delay << options_.sim_reconnect_delay;
  sim_ = std::make_unique<test::Child>(
      std::vector<std::string>{
          test::binary("edgehub-sim"), "--server", "127.0.0.1:" + std::to_string(nginx_port_),
          "--nodes", std::to_string(options_.nodes), "--prefix", kNodePrefix, "--ca",
          dir_ + "/pki/ca.crt", "--client-ca-key", dir_ + "/pki/ca.key", "--state-listen",
          "127.0.0.1:" + std::to_string(sim_port_), "--keepalive", "5", "--lease-renew", "10",
          "--reconnect-delay", delay.str(), "--reconnect-max", "4", "--start-spread", "1",
          "--handshake-timeout", "10", "--request-timeout", "20"},
      log("sim"));
  const auto n = static_cast<std::size_t>(options_.nodes);
  const bool connected = eventually(
      [&] {
        if (!sim_->running()) return false;
        const auto state = fleet_state();
        if (!state.contains("nodes") || state["nodes"].size() != n) return false;
        for (const auto& node : state["nodes"]) {
          if (!node.value("connected", false) || !node.value("registered", false)) return false;
        }
        return true;
      },
      90s, 500ms);
  if (!connected) {
    throw std::runtime_error("e2e: the fleet did not connect and register; see " + log("sim"));
  }
}

Replica& Cluster::replica(const std::string& id) {
  for (auto& r : replicas_) {
    if (r.id == id) return r;
  }
  throw std::invalid_argument("e2e: no replica " + id);
}

std::vector<std::string> Cluster::node_names() const {
  std::vector<std::string> names;
  for (int i = 0; i < options_.nodes; ++i) names.push_back(kNodePrefix + std::to_string(i));
  return names;
}

void Cluster::kill_replica(const std::string& id) {
  auto& r = replica(id);
  r.process->signal(SIGKILL);
  r.process->wait(10s);
  r.process.reset();
}

std::optional<int> Cluster::drain_replica(const std::string& id, std::chrono::milliseconds limit) {
  auto& r = replica(id);
  r.process->signal(SIGTERM);
  auto code = r.process->wait(limit);
  if (code) r.process.reset();
  return code;
}

std::multimap<std::string, std::string> Cluster::sessions() {
  std::multimap<std::string, std::string> held;
  for (auto& r : replicas_) {
    if (!r.alive()) continue;
    const auto res = http_get(r.admin_port, "/debug/nodes");
    if (!res || res->status != 200) continue;
    const auto body = json::parse(res->body, nullptr, false);
    if (body.is_discarded() || !body.contains("nodes")) continue;
    for (const auto& n : body["nodes"]) held.emplace(n.value("node", ""), r.id);
  }
  return held;
}

void Cluster::dump_debug() {
  write_text(dir_ + "/sim-state.json", fleet_state().dump(2));
  for (auto& r : replicas_) {
    if (!r.alive()) continue;
    json nodes = json::array();
    if (const auto all = http_get(r.admin_port, "/debug/nodes"); all && all->status == 200) {
      nodes.push_back(json::parse(all->body, nullptr, false));
    }
    for (const auto& node : node_names()) {
      const auto one = http_get(r.admin_port, "/debug/nodes?node=" + node);
      if (one && one->status == 200) nodes.push_back(json::parse(one->body, nullptr, false));
    }
    if (const auto m = http_get(r.admin_port, "/metrics"); m) write_text(dir_ + "/" + r.id + ".metrics", m->body);
    write_text(dir_ + "/" + r.id + ".debug.json", nodes.dump(1));
  }
}

double Cluster::closes(const std::string& id, const std::string& reason) {
  return metric(id, "edgehub_session_closes_total{reason=\"" + reason + "\"}").value_or(0);
}

std::optional<double> Cluster::metric(const std::string& id, const std::string& series) {
  auto& r = replica(id);
  if (!r.alive()) return std::nullopt;
  const auto res = http_get(r.admin_port, "/metrics");
  if (!res || res->status != 200) return std::nullopt;
  const std::string prefix = series + " ";
  std::istringstream lines(res->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  }
  return 0.0;
}

void Cluster::expire_api_history() { devapi_->signal(SIGUSR1); }

void Cluster::restart_api() {
  devapi_->signal(SIGTERM);
  const auto code = devapi_->wait(30s);
  if (!code || *code != 0) throw std::runtime_error("e2e: devapi did not stop cleanly");
  start_api();
}

json Cluster::fleet_state() {
  const auto res = http_get(sim_port_, "/");
  if (!res || res->status != 200) return json::object();
  auto state = json::parse(res->body, nullptr, false);
  return state.is_discarded() ? json::object() : state;
}

bool Cluster::abandon(const std::string& node) {
  const auto res = http_request("POST", sim_port_, "/nodes/" + node + "/abandon");
  return res && res->status == 200;
}

}  // namespace edgehub::e2e

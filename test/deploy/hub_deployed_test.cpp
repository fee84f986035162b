// The hub as deployed: the configuration from the rendered ConfigMap, the container's args
// and environment, run as the real `edgehub` program against the embedded API server with a
// simulated fleet. Every API request it makes must be allowed by the rendered RBAC rules,
// its probes answer on the metrics port, and every metric it exposes is documented in
// docs/operations.md. The hub integration flows are checked against the same rules.
#include <edgehub/devapi/server.hpp>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "manifests.hpp"
#include "process.hpp"

namespace edgehub::test::deploy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const devapi::ResourceInfo& res(const std::string& name) { return devapi::resource_by_name(name); }

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

// Requests of the hub (its client says "edgehub/<version>"), each checked against the rules.
void expect_allowed(const Rbac& rbac, const std::vector<Request>& requests) {
  std::set<std::string> denied;
  for (const auto& r : requests) {
    if (r.user_agent.rfind("edgehub/", 0) != 0) continue;
    if (!rbac.allows(r)) denied.insert(r.describe());
  }
  for (const auto& d : denied) ADD_FAILURE() << "not allowed by deploy/ RBAC: " << d;
}

bool contains(const std::vector<Request>& requests, const std::string& verb,
              const std::string& resource, const std::string& subresource = {}) {
  return std::any_of(requests.begin(), requests.end(), [&](const Request& r) {
    return r.verb == verb && r.resource == resource && r.subresource == subresource;
  });
}

struct HttpReply {
  int code = 0;
  std::string body;
};

HttpReply http_get(std::uint16_t port, const std::string& path) {
  const auto curl = find_program("curl");
  const auto r = run({curl, "-s", "-o", "-", "-w", "\n%{http_code}",
                      "http://127.0.0.1:" + std::to_string(port) + path}, 10s);
  const auto nl = r.out.rfind('\n');
  if (r.exit_code != 0 || nl == std::string::npos) return {};
  return {std::atoi(r.out.c_str() + nl + 1), r.out.substr(0, nl)};
}

// Metric family names in Prometheus text (from # TYPE lines).
std::set<std::string> metric_families(const std::string& text) {
  std::set<std::string> out;
  const std::regex type_line(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) )");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, type_line)) out.insert(m[1]);
  }
  return out;
}

// A child's log, empty until the child has written it.
std::string log_text(const std::string& path) {
  return std::filesystem::exists(path) ? read_text(path) : std::string();
}

class DeployedHub : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(find_program("kubectl").empty());
    ASSERT_FALSE(find_program("curl").empty());
    dir_ = make_temp_dir("edgehub-deployed-hub");
    objects_ = kustomize("deploy");
  }
  void TearDown() override {
    // Kept when the test failed: the hub's and the simulator's logs are there.
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::vector<YAML::Node> objects_;
};

TEST_F(DeployedHub, RunsAsConfiguredWithinItsRbacAndDocumentsEveryMetric) {
  SCOPED_TRACE("logs and files: " + dir_);
  const auto& deployment = find_object(objects_, "Deployment", "edgehub");
  const auto ns = deployment["metadata"]["namespace"].as<std::string>();
  const auto& container = deployment["spec"]["template"]["spec"]["containers"][0];
  const auto sa = deployment["spec"]["template"]["spec"]["serviceAccountName"].as<std::string>();

  devapi::ServerOptions api_options;
  api_options.request_log = dir_ + "requests.jsonl";
  devapi::Server api(api_options);
  api.start();
  const auto kubeconfig = dir_ + "kubeconfig";
  api.write_kubeconfig(kubeconfig);

  // The production configuration, with only what must differ on a test machine changed:
  // files (the Secrets' mount points), listen addresses (loopback, free ports), the API
  // server (the embedded one instead of the in-cluster service account), log format.
  auto r = run({binary("edgehub"), "certs", "init", "--dir", dir_ + "pki"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  YAML::Node config = YAML::Load(
      find_object(objects_, "ConfigMap")["data"]["edgehub.production.yaml"].as<std::string>());
  config["hub"]["listen"] = "127.0.0.1:0";
  config["hub"]["tls"]["certFile"] = dir_ + "pki/server.crt";
  config["hub"]["tls"]["keyFile"] = dir_ + "pki/server.key";
  config["hub"]["tls"]["clientCAFile"] = dir_ + "pki/ca.crt";
  config["hub"]["certService"]["listen"] = "127.0.0.1:0";
  config["hub"]["certService"]["caCertFile"] = dir_ + "pki/ca.crt";
  config["hub"]["certService"]["caKeyFile"] = dir_ + "pki/ca.key";
  config["hub"]["ioThreads"] = 2;
  config["kube"]["kubeconfig"] = kubeconfig;
  config["metrics"]["listen"] = "127.0.0.1:0";
  config["log"]["format"] = "text";
  const auto config_file = dir_ + "edgehub.yaml";
  std::ofstream(config_file) << YAML::Dump(config);

  // The container's args, with the config path pointing at the copy; its environment.
  std::vector<std::string> argv{binary("edgehub")};
  for (auto arg : container["args"].as<std::vector<std::string>>()) {
    argv.push_back(arg.rfind("/etc/edgehub/", 0) == 0 ? config_file : arg);
  }
  const std::string pod_name = "edgehub-5c9d7b8f6-x2k4p";
  ::setenv("POD_NAME", pod_name.c_str(), 1);
  ::setenv("POD_NAMESPACE", ns.c_str(), 1);
  ::setenv("POD_IP", "127.0.0.1", 1);
  const auto hub_log = dir_ + "hub.log";
  Child hub(argv, hub_log);

  std::uint16_t edge_port = 0, admin_port = 0;
  ASSERT_TRUE(eventually([&] {
    std::smatch m;
    const auto text = log_text(hub_log);
    if (!std::regex_search(text, m, std::regex(R"(listening for edges on 127\.0\.0\.1:(\d+).*admin on 127\.0\.0\.1:(\d+))"))) {
      return false;
    }
    edge_port = static_cast<std::uint16_t>(std::stoi(m[1]));
    admin_port = static_cast<std::uint16_t>(std::stoi(m[2]));
    return true;
  })) << log_text(hub_log);
  EXPECT_TRUE(eventually([&] { return http_get(admin_port, "/readyz").code == 200; }));
  EXPECT_EQ(http_get(admin_port, "/healthz").code, 200);

  // A few edges through their whole life: register, lease, status, a pod with what it
  // references, its status, its deletion.
  constexpr int kNodes = 4;
  Child sim({binary("edgehub-sim"), "--server", "127.0.0.1:" + std::to_string(edge_port),
             "--nodes", std::to_string(kNodes), "--ca", dir_ + "pki/ca.crt", "--client-ca-key",
             dir_ + "pki/ca.key", "--lease-renew", "1", "--status-report", "1",
             "--log-level", "warn"},
            dir_ + "sim.log");
  auto& store = api.store();
  ASSERT_TRUE(eventually([&] {
    return store.list(res("nodes"), "", {})["items"].size() == kNodes &&
           store.list(res("leases.coordination.k8s.io"), "kube-node-lease", {})["items"].size() == kNodes;
  })) << log_text(hub_log) << log_text(dir_ + "sim.log");
  store.create(res("configmaps"), "default",
               {{"metadata", {{"name", "web-config"}}}, {"data", {{"k", "v"}}}});
  store.create(res("secrets"), "default",
               {{"metadata", {{"name", "web-secret"}}}, {"data", {{"k", "dg=="}}}});
  store.create(res("pods"), "default",
               {{"metadata", {{"name", "web"}}},
                {"spec",
                 {{"nodeName", "edge-0"},
                  {"containers", {{{"name", "web"}, {"image", "nginx"},
                                   {"envFrom", {{{"configMapRef", {{"name", "web-config"}}}}}}}}},
                  {"volumes", {{{"name", "s"}, {"secret", {{"secretName", "web-secret"}}}}}}}}});
  EXPECT_TRUE(eventually([&] {
    const auto pod = store.get(res("pods"), "default", "web");
    return pod.value("status", json::object()).value("phase", "") == "Running";
  })) << "the edge's pod status never arrived";

  // Every metric family the running hub exposes has its line in the operator docs.
  const auto metrics = http_get(admin_port, "/metrics");
  ASSERT_EQ(metrics.code, 200);
  const auto families = metric_families(metrics.body);
  EXPECT_GE(families.size(), 10u);
  const auto docs = read_text(source("docs/operations.md"));
  for (const auto& family : families) {
    EXPECT_NE(docs.find("`" + family + "`"), std::string::npos)
        << family << " is not documented in docs/operations.md";
  }

  hub.signal(SIGTERM);
  const auto code = hub.wait(120s);
  ASSERT_TRUE(code.has_value()) << "the hub did not stop after SIGTERM";
  EXPECT_EQ(*code, 0) << log_text(hub_log);
  sim.signal(SIGTERM);
  sim.wait(30s);

  // Membership Leases and NodeSync records the hub wrote, against their labels and schema.
  const auto crd = to_json(find_object(objects_, "CustomResourceDefinition", "nodesyncs.edgehub.io"));
  const auto& schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  for (const auto& sync : store.list(res("nodesyncs.edgehub.io"), "", {})["items"]) {
    EXPECT_EQ(schema_errors(schema, sync), std::vector<std::string>{}) << sync.dump();
  }
  for (const auto& lease : store.list(res("leases.coordination.k8s.io"), ns, {})["items"]) {
    EXPECT_EQ(lease["metadata"]["name"], pod_name);
    EXPECT_EQ(lease["metadata"]["labels"].value("edgehub.io/replica", ""), "true");
  }

  const auto requests = read_request_log(api_options.request_log);
  EXPECT_TRUE(contains(requests, "create", "nodes"));
  EXPECT_TRUE(contains(requests, "create", "leases"));
  EXPECT_TRUE(contains(requests, "watch", "pods"));
  EXPECT_TRUE(contains(requests, "patch", "pods", "status"));
  expect_allowed(Rbac(objects_, ns, sa), requests);
}

// The hub integration suite's flows (registration, leases, status, pods, configmaps, secrets,
// pod deletes, reconnects) against the same rules, through the request log of its API server.
TEST_F(DeployedHub, IntegrationFlowsStayWithinRbac) {
  SCOPED_TRACE("logs and files: " + dir_);
  const auto log = dir_ + "integration-requests.jsonl";
  ::setenv("EDGEHUB_DEVAPI_REQUEST_LOG", log.c_str(), 1);
  ::setenv("TEST_TMPDIR", dir_.c_str(), 1);  // its files apart from other tests' running now
  const auto r = run({binary("test/integration/hub_integration_test")}, 280s);
  ::unsetenv("EDGEHUB_DEVAPI_REQUEST_LOG");
  ::unsetenv("TEST_TMPDIR");
  ASSERT_EQ(r.exit_code, 0) << r.out.substr(r.out.size() > 4000 ? r.out.size() - 4000 : 0);
  const auto& deployment = find_object(objects_, "Deployment", "edgehub");
  const auto requests = read_request_log(log);
  EXPECT_TRUE(contains(requests, "create", "nodes"));
  EXPECT_TRUE(contains(requests, "delete", "pods"));
  EXPECT_TRUE(contains(requests, "get", "configmaps"));
  expect_allowed(Rbac(objects_, deployment["metadata"]["namespace"].as<std::string>(),
                      deployment["spec"]["template"]["spec"]["serviceAccountName"].as<std::string>()),
                 requests);
}

}  // namespace
}  // namespace edgehub::test::deploy

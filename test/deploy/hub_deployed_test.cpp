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

#include "edge.hpp"
#include "manifests.hpp"
#include "process.hpp"

namespace edgehub::test::deploy {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const devapi::ResourceInfo& res(const std::string& name) { return devapi::resource_by_name(name); }

// The hub runs as its own program here: more time than in-process tests give it.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s) {
  return test::eventually(pred, limit);
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
    const auto deployment = find_object(objects_, "Deployment", "edgehub");
    ns_ = deployment["metadata"]["namespace"].as<std::string>();
    sa_ = deployment["spec"]["template"]["spec"]["serviceAccountName"].as<std::string>();
  }
  void TearDown() override {
    if (hub_) hub_->signal(SIGKILL);
    // Kept when the test failed: the hub's and the simulator's logs are there.
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // The embedded API server with the request log, and the real edgehub program run with the
  // production configuration, the container's args and its environment. Changed only where
  // a test machine must differ: files (the Secrets' mount points), listen addresses
  // (loopback, free ports), the API server (the embedded one instead of the in-cluster
  // service account), the log format.
  void start_hub() {
    devapi::ServerOptions api_options;
    api_options.request_log = dir_ + "requests.jsonl";
    api_ = std::make_unique<devapi::Server>(api_options);
    api_->start();
    const auto kubeconfig = dir_ + "kubeconfig";
    api_->write_kubeconfig(kubeconfig);

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

    const auto deployment = find_object(objects_, "Deployment", "edgehub");
    const auto container = deployment["spec"]["template"]["spec"]["containers"][0];
    std::vector<std::string> argv{binary("edgehub")};
    for (auto arg : container["args"].as<std::vector<std::string>>()) {
      argv.push_back(arg.rfind("/etc/edgehub/", 0) == 0 ? config_file : arg);
    }
    ::setenv("POD_NAME", pod_name_.c_str(), 1);
    ::setenv("POD_NAMESPACE", ns_.c_str(), 1);
    ::setenv("POD_IP", "127.0.0.1", 1);
    hub_log_ = dir_ + "hub.log";
    hub_ = std::make_unique<Child>(argv, hub_log_);
    ASSERT_TRUE(eventually([&] {
      std::smatch m;
      const auto text = log_text(hub_log_);
      if (!std::regex_search(text, m, std::regex(R"(listening for edges on 127\.0\.0\.1:(\d+).*admin on 127\.0\.0\.1:(\d+))"))) {
        return false;
      }
      edge_port_ = static_cast<std::uint16_t>(std::stoi(m[1]));
      admin_port_ = static_cast<std::uint16_t>(std::stoi(m[2]));
      return true;
    })) << log_text(hub_log_);
    ASSERT_TRUE(eventually([&] { return http_get(admin_port_, "/readyz").code == 200; }));
  }

  // SIGTERM, as the kubelet stops a container; the hub must exit 0 on its own.
  void stop_hub() {
    hub_->signal(SIGTERM);
    const auto code = hub_->wait(120s);
    ASSERT_TRUE(code.has_value()) << "the hub did not stop after SIGTERM";
    EXPECT_EQ(*code, 0) << log_text(hub_log_);
    hub_.reset();
  }

  void expect_requests_allowed() {
    expect_allowed(Rbac(objects_, ns_, sa_), read_request_log(dir_ + "requests.jsonl"));
  }

  std::string dir_, ns_, sa_, hub_log_;
  const std::string pod_name_ = "edgehub-5c9d7b8f6-x2k4p";
  std::vector<YAML::Node> objects_;
  std::unique_ptr<devapi::Server> api_;
  std::unique_ptr<Child> hub_;
  std::uint16_t edge_port_ = 0, admin_port_ = 0;
};

TEST_F(DeployedHub, RunsAsConfiguredWithinItsRbacAndDocumentsEveryMetric) {
  SCOPED_TRACE("logs and files: " + dir_);
  ASSERT_NO_FATAL_FAILURE(start_hub());
  EXPECT_EQ(http_get(admin_port_, "/healthz").code, 200);

  // A few edges through their whole life: register, lease, status, a pod with what it
  // references, its status.
  constexpr int kNodes = 4;
  Child sim({binary("edgehub-sim"), "--server", "127.0.0.1:" + std::to_string(edge_port_),
             "--nodes", std::to_string(kNodes), "--ca", dir_ + "pki/ca.crt", "--client-ca-key",
             dir_ + "pki/ca.key", "--lease-renew", "1", "--status-report", "1",
             "--log-level", "warn"},
            dir_ + "sim.log");
  auto& store = api_->store();
  ASSERT_TRUE(eventually([&] {
    return store.list(res("nodes"), "", {})["items"].size() == kNodes &&
           store.list(res("leases.coordination.k8s.io"), "kube-node-lease", {})["items"].size() == kNodes;
  })) << log_text(hub_log_) << log_text(dir_ + "sim.log");
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
  const auto metrics = http_get(admin_port_, "/metrics");
  ASSERT_EQ(metrics.code, 200);
  const auto families = metric_families(metrics.body);
  EXPECT_GE(families.size(), 10u);
  const auto docs = read_text(source("docs/operations.md"));
  for (const auto& family : families) {
    EXPECT_NE(docs.find("`" + family + "`"), std::string::npos)
        << family << " is not documented in docs/operations.md";
  }

  // Each node's NodeSync record names this replica (hub.id = the pod name) as its owner.
  EXPECT_TRUE(eventually([&] {
    const auto syncs = store.list(res("nodesyncs.edgehub.io"), "", {});
    return syncs["items"].size() == kNodes &&
           std::all_of(syncs["items"].begin(), syncs["items"].end(), [&](const json& sync) {
             return sync.value("status", json::object()).value("owner", "") == pod_name_;
           });
  })) << store.list(res("nodesyncs.edgehub.io"), "", {}).dump();

  // The replica's membership Lease: named after the pod, in its namespace, labelled.
  EXPECT_TRUE(eventually([&] {
    const auto leases = store.list(res("leases.coordination.k8s.io"), ns_, {});
    for (const auto& lease : leases["items"]) {
      if (lease["metadata"]["name"] == pod_name_ &&
          lease["metadata"]["labels"].value("edgehub.io/replica", "") == "true" &&
          lease["metadata"]["annotations"].value("edgehub.io/address", "") == "127.0.0.1") {
        return true;
      }
    }
    return false;
  })) << "no membership Lease " << pod_name_ << " in " << ns_;

  ASSERT_NO_FATAL_FAILURE(stop_hub());
  sim.signal(SIGTERM);
  sim.wait(30s);

  // Membership Leases and NodeSync records the hub wrote, against their labels and schema.
  const auto crd = to_json(find_object(objects_, "CustomResourceDefinition", "nodesyncs.edgehub.io"));
  const auto& schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  const auto syncs = store.list(res("nodesyncs.edgehub.io"), "", {});
  for (const auto& sync : syncs["items"]) {
    EXPECT_EQ(schema_errors(schema, sync), std::vector<std::string>{}) << sync.dump();
  }
  const auto leases = store.list(res("leases.coordination.k8s.io"), ns_, {});
  for (const auto& lease : leases["items"]) {
    EXPECT_EQ(lease["metadata"]["name"], pod_name_);
    EXPECT_EQ(lease["metadata"]["labels"].value("edgehub.io/replica", ""), "true");
  }

  const auto requests = read_request_log(dir_ + "requests.jsonl");
  EXPECT_TRUE(contains(requests, "create", "nodes"));
  EXPECT_TRUE(contains(requests, "create", "leases"));
  EXPECT_TRUE(contains(requests, "watch", "pods"));
  EXPECT_TRUE(contains(requests, "patch", "pods", "status"));
  expect_requests_allowed();
}

// What an edgecore asks beyond the simulator's requests: label updates of its Node, a mirror
// pod, a service-account token, events, deleting its pod.
TEST_F(DeployedHub, EdgeRequestsStayWithinRbac) {
  SCOPED_TRACE("logs and files: " + dir_);
  ASSERT_NO_FATAL_FAILURE(start_hub());
  auto& store = api_->store();
  store.create(res("serviceaccounts"), "default", {{"metadata", {{"name", "web-sa"}}}});
  store.create(res("pods"), "default",
               {{"metadata", {{"name", "web"}}},
                {"spec", {{"nodeName", "edge-x"}, {"serviceAccountName", "web-sa"},
                          {"containers", {{{"name", "web"}, {"image", "nginx"}}}}}}});

  Edge edge(read_text(dir_ + "pki/ca.crt"), read_text(dir_ + "pki/ca.key"), edge_port_, "edge-x");
  edge.read_timeout = 20s;
  const json node = {{"apiVersion", "v1"}, {"kind", "Node"},
                     {"metadata", {{"name", "edge-x"}, {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}};
  EXPECT_EQ(edge.request("insert", "null/node/edge-x", node.dump()).route.operation, "response");
  edge.inserted_or_resynced("default/pod/web");  // its pods reach the edge: the hub owns the node

  json labelled = node;
  labelled["metadata"]["labels"]["zone"] = "a";
  auto reply = edge.request("update", "null/node/edge-x", labelled.dump());
  EXPECT_EQ(reply.content.find("ErrStatus"), std::string::npos) << reply.content;
  // A mirror pod as the kubelet creates it (NodeRestriction's admitPodCreate): the mirror
  // annotation, owned by its own Node, referencing no Secret, ConfigMap or service account.
  const auto node_uid = store.get(res("nodes"), "", "edge-x")["metadata"]["uid"];
  const json mirror = {
      {"metadata", {{"name", "static-edge-x"}, {"namespace", "default"},
                    {"annotations", {{"kubernetes.io/config.mirror", "a1b2"}}},
                    {"ownerReferences", {{{"apiVersion", "v1"}, {"kind", "Node"}, {"name", "edge-x"},
                                          {"uid", node_uid}, {"controller", true}}}}}},
      {"spec", {{"nodeName", "edge-x"}, {"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}};
  reply = edge.request("insert", "default/pod/static-edge-x", mirror.dump());
  EXPECT_EQ(reply.content.find("ErrStatus"), std::string::npos) << reply.content;
  // A token bound to the pod that uses the account, as the kubelet asks for it.
  const auto web_uid = store.get(res("pods"), "default", "web")["metadata"]["uid"];
  reply = edge.request(
      "query", "default/serviceaccounttoken/web-sa",
      json{{"spec", {{"audiences", json::array()}, {"expirationSeconds", 3600},
                     {"boundObjectRef", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "web"},
                                         {"uid", web_uid}}}}}}.dump());
  EXPECT_NE(reply.content.find("token"), std::string::npos) << reply.content;
  edge.send("insert", "default/event/web.1",
            json{{"metadata", {{"name", "web.1"}, {"namespace", "default"}}},
                 {"involvedObject", {{"kind", "Pod"}, {"namespace", "default"}, {"name", "web"}}},
                 {"reason", "Started"}, {"message", "Started container web"}, {"type", "Normal"}}.dump());
  reply = edge.request("delete", "default/pod/web", R"({"gracePeriodSeconds":0})");
  EXPECT_EQ(reply.content.find("ErrStatus"), std::string::npos) << reply.content;
  EXPECT_TRUE(eventually([&] { return !store.list(res("events"), "default", {})["items"].empty(); }));
  edge.close();
  ASSERT_NO_FATAL_FAILURE(stop_hub());

  const auto requests = read_request_log(dir_ + "requests.jsonl");
  EXPECT_TRUE(contains(requests, "patch", "nodes"));
  EXPECT_TRUE(contains(requests, "create", "pods"));
  EXPECT_TRUE(contains(requests, "create", "serviceaccounts", "token"));
  EXPECT_TRUE(contains(requests, "create", "events"));
  EXPECT_TRUE(contains(requests, "delete", "pods"));
  expect_requests_allowed();
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
  auto requests = read_request_log(log);
  // The in-process hub of that suite keeps hub.namespace's default unexpanded; expanded
  // without POD_NAMESPACE it is "edgehub", the namespace of deploy/.
  for (auto& r : requests) {
    if (r.ns == "${POD_NAMESPACE:-edgehub}") r.ns = "edgehub";
  }
  EXPECT_TRUE(contains(requests, "create", "nodes"));
  EXPECT_TRUE(contains(requests, "delete", "pods"));
  EXPECT_TRUE(contains(requests, "get", "configmaps"));
  expect_allowed(Rbac(objects_, ns_, sa_), requests);
}

}  // namespace
}  // namespace edgehub::test::deploy

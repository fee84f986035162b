// The real programs together: an API server (`edgehub --dev`, used for its embedded API), one
// `edgehub` replica started from a config file, and `edgehub-sim` processes as the edges —
// each its own process on loopback, as in production. What the edges hold is read from the
// simulator (`--state-listen`: state and counters), what the API holds over HTTP, and what
// the replica did from its /metrics and /debug/nodes. The in-process hub tests
// (hub_test.cpp) cover the protocol's details; these prove the binaries work together.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "eventually.hpp"
#include "process.hpp"
#include "programs.hpp"

namespace edgehub::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
namespace http = boost::beast::http;

// --- small helpers --------------------------------------------------------------------------

// Whole programs start here: more time than in-process tests give them.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s) {
  return test::eventually(pred, limit);
}

// --- the processes --------------------------------------------------------------------------

// `edgehub --dev`: the API server (with the dev PKI and a kubeconfig).
struct Api {
  explicit Api(const fs::path& dir) : dir(dir) {
    std::ofstream(dir / "api.yaml") << "hub: {id: api-only, listen: \"127.0.0.1:0\", certService: {enabled: false}}\n"
                                    << "metrics: {listen: \"127.0.0.1:0\"}\n"
                                    << "log: {level: warn}\n"
                                    << "dev: {apiListen: \"127.0.0.1:0\", kubeconfigOut: \""
                                    << (dir / "kubeconfig").string() << "\", certsDir: \""
                                    << (dir / "certs").string() << "\"}\n";
    process = std::make_unique<Child>(
        std::vector<std::string>{binary("edgehub"), "--dev", "--config", (dir / "api.yaml").string()},
        (dir / "api.log").string());
    const std::string p =
        wait_for_log(dir / "kubeconfig", R"(server: http://127\.0\.0\.1:([0-9]+))");
    port = p.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(p));
  }
  fs::path dir;
  std::unique_ptr<Child> process;
  std::uint16_t port = 0;
};

// One edgehub replica, configured from a file, talking to the API through the kubeconfig.
struct Replica {
  Replica(const fs::path& dir, std::uint16_t edge_port) : dir(dir), edge_port(edge_port) {}

  bool start() {
    const auto certs = dir / "certs";
    std::ofstream(dir / "hub.yaml")
        << "hub:\n  id: fleet-test-0\n  listen: \"127.0.0.1:" << edge_port << "\"\n"
        << "  tls: {certFile: \"" << (certs / "server.crt").string() << "\", keyFile: \""
        << (certs / "server.key").string() << "\", clientCAFile: \""
        << (certs / "ca.crt").string() << "\"}\n"
        << "  certService: {enabled: false}\n  ioThreads: 2\n"
        << "kube: {kubeconfig: \"" << (dir / "kubeconfig").string() << "\"}\n"
        << "delivery: {retryInterval: 2s}\n"
        << "metrics: {listen: \"127.0.0.1:0\"}\n"
        << "log: {level: info}\n";
    const auto log = dir / ("hub-" + std::to_string(++starts) + ".log");
    process = std::make_unique<Child>(
        std::vector<std::string>{binary("edgehub"), "--config", (dir / "hub.yaml").string()},
        log.string());
    const std::string admin = wait_for_log(log, R"(admin on 127\.0\.0\.1:([0-9]+))");
    if (admin.empty()) return false;
    admin_port = static_cast<std::uint16_t>(std::stoi(admin));
    return eventually([&] { return http_get(admin_port, "/readyz").status == 200; });
  }
  // SIGTERM, as Kubernetes stops a pod; the exit code.
  std::optional<int> stop() {
    process->signal(SIGTERM);
    auto code = process->wait(30s);
    process.reset();
    return code;
  }
  std::string metrics() const { return http_get(admin_port, "/metrics").body; }
  // This node's entry of /debug/nodes (null when it has no session).
  json debug_node(const std::string& node) const {
    const json all = http_get(admin_port, "/debug/nodes").json_body();
    if (!all.is_object()) return nullptr;
    for (const auto& n : all["nodes"]) {
      if (n["node"] == node) return n;
    }
    return nullptr;
  }

  fs::path dir;
  std::uint16_t edge_port;
  std::uint16_t admin_port = 0;
  int starts = 0;
  std::unique_ptr<Child> process;
};

// The simulator's arguments for `count` nodes named `<prefix><i>` that renew their leases
// every second and reconnect at once.
std::vector<std::string> fleet_args(const std::string& prefix,
                                    const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"--prefix", prefix, "--lease-renew", "1",
                                   "--reconnect-delay", "0.2", "--reconnect-max", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// An edgehub-sim process with certificates from the API server's dev PKI.
struct Sim : SimProcess {
  Sim(const fs::path& dir, std::uint16_t hub_port, const std::string& prefix, int count,
      const std::vector<std::string>& extra = {})
      : SimProcess(dir / "certs", hub_port, count, fleet_args(prefix, extra),
                   dir / ("sim-" + prefix + ".log")) {}

  // Stamped objects received (the simulator times every object carrying edgehub.io/stamp).
  std::int64_t stamped() const {
    const json s = stats();
    return s.is_object() ? s["downstream_latency"]["count"].get<std::int64_t>() : -1;
  }
  json node(const std::string& name) const {
    const json s = state();
    if (!s.is_object()) return nullptr;
    for (const auto& n : s["nodes"]) {
      if (n["name"] == name) return n;
    }
    return nullptr;
  }
  // What `node` holds of kind/namespace/name (null when nothing was received).
  json object(const std::string& node_name, const std::string& kind, const std::string& ns,
              const std::string& name) const {
    const json n = node(node_name);
    if (n.is_null()) return nullptr;
    for (const auto& o : n["objects"]) {
      if (o["kind"] == kind && o["namespace"] == ns && o["name"] == name) return o;
    }
    return nullptr;
  }
  bool all_connected(int count) const {
    const json s = state();
    if (!s.is_object() || s["nodes"].size() != static_cast<std::size_t>(count)) return false;
    for (const auto& n : s["nodes"]) {
      if (!n["connected"].get<bool>() || !n["registered"].get<bool>()) return false;
    }
    return true;
  }
};

// --- the fixture: one API server and one replica for the whole suite -------------------------

class Fleet : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fresh_work_dir("fleet-test"));
    api_ = new Api(*dir_);
    ASSERT_NE(api_->port, 0) << slurp(*dir_ / "api.log");
    replica_ = new Replica(*dir_, test::free_port());
    ASSERT_TRUE(replica_->start()) << slurp(*dir_ / "hub-1.log");
  }
  static void TearDownTestSuite() {
    if (replica_ != nullptr && replica_->process) replica_->stop();
    delete replica_;
    delete api_;
    if (dir_ != nullptr && ::testing::UnitTest::GetInstance()->failed_test_count() == 0) {
      fs::remove_all(*dir_);  // kept after a failure: the logs are in it
    }
    delete dir_;
    replica_ = nullptr;
    api_ = nullptr;
    dir_ = nullptr;
  }

  static HttpAnswer api(http::verb verb, const std::string& target, const json& body = nullptr,
                        const std::string& content_type = "application/json") {
    return http_request(api_->port, verb, target, body.is_null() ? "" : body.dump(), content_type);
  }
  static json get(const std::string& target) { return api(http::verb::get, target).json_body(); }
  static std::string rv(const json& object) { return object["metadata"]["resourceVersion"]; }

  // A pod on `node` that mounts configmap `cm` (when given), stamped so the simulator counts it.
  static json pod(const std::string& name, const std::string& node, const std::string& cm = {}) {
    json p = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"annotations", {{"edgehub.io/stamp", stamp()}}}}},
              {"spec",
               {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "registry.invalid/x"}}}}}}};
    if (!cm.empty()) {
      p["spec"]["volumes"] = {{{"name", "cfg"}, {"configMap", {{"name", cm}}}}};
    }
    return p;
  }
  static std::string stamp() {
    return std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
  }
  static json stamped_patch(const std::string& label) {
    return {{"metadata", {{"labels", {{"step", label}}}, {"annotations", {{"edgehub.io/stamp", stamp()}}}}}};
  }

  static inline fs::path* dir_ = nullptr;
  static inline Api* api_ = nullptr;
  static inline Replica* replica_ = nullptr;
};

bool node_ready(const json& node) {
  if (!node.is_object() || !node.contains("status")) return false;
  for (const auto& c : node["status"].value("conditions", json::array())) {
    // Compared as strings: GCC 12 warns of a bounds error inside json == "text" here (a false
    // positive of its inliner, and -Werror).
    if (c.value("type", "") == "Ready" && c.value("status", "") == "True") return true;
  }
  return false;
}

TEST_F(Fleet, NodesRegisterBecomeReadyRenewLeasesAndKubectlShowsThemReady) {
  constexpr int kNodes = 20;
  Sim sim(*dir_, replica_->edge_port, "reg-", kNodes);
  ASSERT_NE(sim.state_port, 0);
  ASSERT_TRUE(eventually([&] { return sim.all_connected(kNodes); }, 60s)) << sim.state().dump();
  // Registration created the Nodes; the status patch made them Ready.
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < kNodes; ++i) {
      if (!node_ready(get("/api/v1/nodes/reg-" + std::to_string(i)))) return false;
    }
    return true;
  }));
  // Leases are renewed: the resourceVersion moves on.
  const std::string lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/reg-3";
  ASSERT_TRUE(eventually([&] { return get(lease).contains("spec"); })) << get(lease).dump();
  const json first = get(lease);
  EXPECT_EQ(first["spec"]["holderIdentity"], "reg-3");
  ASSERT_TRUE(eventually([&] {
    const json now = get(lease);
    return now.contains("metadata") && rv(now) != rv(first) &&
           now["spec"]["renewTime"] != first["spec"]["renewTime"];
  }));

  // kubectl against the API: every node listed Ready, from the server's Table.
  const auto kubectl = run({"/usr/bin/env", "kubectl", "--kubeconfig", (*dir_ / "kubeconfig").string(),
                            "--cache-dir", (*dir_ / "kube-cache").string(), "get", "nodes",
                            "-l", "node-role.kubernetes.io/edge"});
  ASSERT_EQ(kubectl.exit_code, 0) << kubectl.err;
  EXPECT_NE(kubectl.out.find("STATUS"), std::string::npos) << kubectl.out;
  int ready = 0;
  std::istringstream lines(kubectl.out);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, std::regex(R"(^reg-[0-9]+ +Ready +agent,edge )"))) ++ready;
  }
  EXPECT_EQ(ready, kNodes) << kubectl.out;
}

TEST_F(Fleet, PodArrivesOnceAtItsNodeItsConfigMapAndTheirUpdatesInOrder) {
  Sim sim(*dir_, replica_->edge_port, "pod-", 3);
  ASSERT_TRUE(eventually([&] { return sim.all_connected(3); }, 60s)) << sim.state().dump();
  const auto acks_before = metric(replica_->metrics(), "edgehub_acks_total");

  const json cm = {{"metadata", {{"name", "web-config"}}}, {"data", {{"a", "1"}}}};
  ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/configmaps", cm).status, 201);
  ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/pods", pod("web", "pod-1", "web-config")).status, 201);
  const std::string pods = "/api/v1/namespaces/default/pods/";

  // The pod reaches pod-1, and only pod-1; its configmap comes with it. The simulated edge
  // reports the new pod Running (podpatch), and that version comes back down too.
  std::string running_rv;
  ASSERT_TRUE(eventually([&] {
    const json now = get(pods + "web");
    if (now["status"].value("phase", "") != "Running") return false;
    running_rv = rv(now);
    return sim.object("pod-1", "Pod", "default", "web")["resourceVersion"] == running_rv;
  })) << sim.state().dump();
  ASSERT_TRUE(eventually(
      [&] { return !sim.object("pod-1", "ConfigMap", "default", "web-config").is_null(); }));
  EXPECT_TRUE(sim.object("pod-0", "Pod", "default", "web").is_null());
  EXPECT_TRUE(sim.object("pod-2", "Pod", "default", "web").is_null());
  EXPECT_TRUE(sim.object("pod-0", "ConfigMap", "default", "web-config").is_null());
  // ACKed: nothing left awaiting an ACK for pod-1, and the replica counted the ACK.
  ASSERT_TRUE(eventually([&] {
    const json n = replica_->debug_node("pod-1");
    return n.is_object() && n["awaitingAck"] == 0 && n["queued"] == 0;
  })) << replica_->debug_node("pod-1").dump();
  EXPECT_GT(metric(replica_->metrics(), "edgehub_acks_total"), acks_before);
  // Once: the whole fleet received the pod exactly twice, as created and as Running.
  EXPECT_EQ(sim.stamped(), 2);

  // A configmap update is pushed to the node that needs it.
  const json cm_patch = {{"data", {{"a", "2"}}}};
  auto patched = api(http::verb::patch, "/api/v1/namespaces/default/configmaps/web-config", cm_patch,
                     "application/merge-patch+json");
  ASSERT_EQ(patched.status, 200) << patched.body;
  const std::string cm_rv = rv(patched.json_body());
  EXPECT_TRUE(eventually([&] {
    return sim.object("pod-1", "ConfigMap", "default", "web-config")["resourceVersion"] == cm_rv;
  })) << sim.state().dump();

  // Five updates back to back: the node ends on the last one (no older version after a newer).
  std::string last_rv;
  for (int i = 0; i < 5; ++i) {
    auto r = api(http::verb::patch, pods + "web", stamped_patch("s" + std::to_string(i)),
                 "application/merge-patch+json");
    ASSERT_EQ(r.status, 200) << r.body;
    last_rv = rv(r.json_body());
  }
  ASSERT_TRUE(eventually([&] {
    return sim.object("pod-1", "Pod", "default", "web")["resourceVersion"] == last_rv;
  })) << sim.state().dump();
  // Unsent older versions may be replaced by newer ones; none is sent twice.
  EXPECT_GE(sim.stamped(), 2 + 1);
  EXPECT_LE(sim.stamped(), 2 + 5);

  // An update then the delete, back to back: the delete arrives last.
  const auto before_delete = sim.stamped();
  ASSERT_EQ(api(http::verb::patch, pods + "web", stamped_patch("last"), "application/merge-patch+json").status,
            200);
  const json zero = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"gracePeriodSeconds", 0}};
  ASSERT_EQ(api(http::verb::delete_, pods + "web", zero).status, 200);
  ASSERT_TRUE(eventually([&] {
    return sim.object("pod-1", "Pod", "default", "web")["deleted"] == true;
  })) << sim.state().dump();
  EXPECT_GT(sim.stamped(), before_delete);
  EXPECT_TRUE(sim.object("pod-0", "Pod", "default", "web").is_null());
  ASSERT_TRUE(eventually([&] { return replica_->debug_node("pod-1")["awaitingAck"] == 0; }));
  // Nothing more arrives after the delete.
  EXPECT_EQ(sim.object("pod-1", "Pod", "default", "web")["deleted"], true);
}

TEST_F(Fleet, DroppedAcksAreRetriedWithoutStallingOtherNodes) {
  Sim lossy(*dir_, replica_->edge_port, "lossy-", 1, {"--drop-acks", "1"});
  Sim fine(*dir_, replica_->edge_port, "fine-", 1);
  ASSERT_TRUE(eventually([&] { return lossy.all_connected(1) && fine.all_connected(1); }, 60s));
  const auto retries_before = metric(replica_->metrics(), "edgehub_delivery_retries_total");

  ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/pods", pod("never-acked", "lossy-0")).status, 201);
  // The lossy node keeps receiving the pod again: retries, never given up.
  ASSERT_TRUE(eventually([&] { return lossy.stamped() >= 3; }, 60s)) << lossy.stats().dump();
  EXPECT_GE(metric(replica_->metrics(), "edgehub_delivery_retries_total"), retries_before + 2);
  EXPECT_GE(replica_->debug_node("lossy-0")["awaitingAck"].get<int>(), 1);

  // Meanwhile the other node gets every pod meant for it, and ACKs them.
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/pods",
                  pod("fine-" + std::to_string(i), "fine-0"))
                  .status,
              201);
  }
  // Each in its latest version (the Running status the edge reported for it).
  ASSERT_TRUE(eventually([&] {
    for (int i = 0; i < 10; ++i) {
      const json api_pod = get("/api/v1/namespaces/default/pods/fine-" + std::to_string(i));
      const json held = fine.object("fine-0", "Pod", "default", "fine-" + std::to_string(i));
      if (held.is_null() || api_pod["status"].value("phase", "") != "Running" ||
          held["resourceVersion"] != rv(api_pod)) {
        return false;
      }
    }
    return true;
  })) << fine.state().dump();
  EXPECT_TRUE(eventually([&] { return replica_->debug_node("fine-0")["awaitingAck"] == 0; }));
  EXPECT_GE(replica_->debug_node("lossy-0")["awaitingAck"].get<int>(), 1);
}

TEST_F(Fleet, MetricsPassPromtoolAndCountApiRequests) {
  Sim sim(*dir_, replica_->edge_port, "metrics-", 2);
  ASSERT_TRUE(eventually([&] { return sim.all_connected(2); }, 60s));
  std::string text;
  ASSERT_TRUE(eventually([&] {
    text = replica_->metrics();
    return metric(text, R"(edgehub_api_requests_total{verb="patch",resource="nodes/status",code="200"})") >= 2;
  })) << text;
  EXPECT_GE(metric(text, R"(edgehub_api_requests_total{verb="create",resource="nodes",code="201"})") +
                metric(text, R"(edgehub_api_requests_total{verb="create",resource="nodes",code="409"})"),
            1)
      << text;
  EXPECT_GE(metric(text, R"(edgehub_api_requests_total{verb="list",resource="pods",code="200"})"), 2)
      << text;  // a resync per connected node
  EXPECT_GE(metric(text, R"(edgehub_api_request_duration_seconds_count{verb="patch"})"), 2) << text;
  EXPECT_GE(metric(text, R"(edgehub_upstream_requests_total{operation="patch",type="nodepatch",result="ok"})"), 2)
      << text;

  const auto file = *dir_ / "metrics.txt";
  std::ofstream(file) << text;
  const auto check = run({"/bin/sh", "-c", "promtool check metrics < '" + file.string() + "'"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

TEST_F(Fleet, NodeReconnectingAfterAnUpdateMadeWhileAwayReceivesIt) {
  Sim sim(*dir_, replica_->edge_port, "away-", 2);
  ASSERT_TRUE(eventually([&] { return sim.all_connected(2); }, 60s));
  const std::string pods = "/api/v1/namespaces/default/pods/";
  ASSERT_EQ(api(http::verb::post, "/api/v1/namespaces/default/pods", pod("roamer", "away-0")).status, 201);
  ASSERT_TRUE(eventually([&] { return !sim.object("away-0", "Pod", "default", "roamer").is_null(); }));

  // The replica goes away (SIGTERM: it closes the sessions and exits 0); the pod changes.
  EXPECT_EQ(replica_->stop(), 0);
  ASSERT_TRUE(eventually([&] {
    const json n = sim.node("away-0");
    return n.is_object() && !n["connected"].get<bool>();
  }));
  auto r = api(http::verb::patch, pods + "roamer", stamped_patch("while-away"),
               "application/merge-patch+json");
  ASSERT_EQ(r.status, 200);
  const std::string changed_rv = rv(r.json_body());
  EXPECT_NE(sim.object("away-0", "Pod", "default", "roamer")["resourceVersion"], changed_rv);

  // Back on the same address: the simulator (same process, same state) reconnects and is
  // resynced with the change it missed.
  ASSERT_TRUE(replica_->start());
  ASSERT_TRUE(eventually([&] { return sim.all_connected(2); }, 60s)) << sim.state().dump();
  EXPECT_TRUE(eventually([&] {
    return sim.object("away-0", "Pod", "default", "roamer")["resourceVersion"] == changed_rv;
  })) << sim.state().dump();
  EXPECT_GE(sim.node("away-0")["connects"].get<int>(), 2);
  EXPECT_TRUE(sim.object("away-1", "Pod", "default", "roamer").is_null());
}

}  // namespace
}  // namespace edgehub::test

// One hub replica against the embedded API server, with edges speaking edgecore's protocol
// over real TLS: registration, leases, status, pods, configmaps, secrets, reconnects, retries.
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "edge.hpp"
#include "hubs.hpp"
#include "process.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Edge;
using test::eventually;

// Every test runs twice: with two I/O threads and an API thread, and with hub.singleThread.
class HubIntegration : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto options = hubs_.options("hub-test");
    options.config.hub.single_thread = GetParam();
    options.config.hub.io_threads = GetParam() ? 1 : 2;
    options.config.delivery.retry_interval = 300ms;
    options.kube_ca_pem = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";
    hub_ = &hubs_.start(std::move(options));
  }

  devapi::Store& store() { return hubs_.store(); }
  static const devapi::ResourceInfo& res(const char* name) { return devapi::resource_by_name(name); }

  json create_pod(const std::string& name, const std::string& node, json extra_spec = json::object()) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec", {{"nodeName", node}, {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
    pod["spec"].update(extra_spec);
    return store().create(res("pods"), "default", pod);
  }
  static std::string node_body(const std::string& node) {
    return json{{"metadata", {{"name", node}, {"labels", {{"node-role.kubernetes.io/edge", ""}}}}},
                {"status", {{"phase", "Running"}}}}
        .dump();
  }
  // Registration as edged does it; returns the edge with its Node pushed down.
  std::unique_ptr<Edge> registered(const std::string& node) {
    auto edge = std::make_unique<Edge>(ca_, hub_->edge_port(), node);
    edge->request("insert", "null/node/" + node, node_body(node));
    edge->next_object("update", "null/node/" + node);
    // Owned (and so delivering) once its NodeSync claim is written; changes made before that
    // arrive with the resync, as updates.
    EXPECT_TRUE(eventually([&] { return hubs_.owner(node) == "hub-test"; }));
    return edge;
  }

  test::InProcessHubs hubs_{"hub-it"};
  const net::CertAndKey& ca_ = hubs_.ca();
  Hub* hub_ = nullptr;
};

json object_resp(const wire::Message& m) { return m.content_json(); }

INSTANTIATE_TEST_SUITE_P(Threads, HubIntegration, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "SingleThread" : "IoAndApiThreads"; });

TEST_P(HubIntegration, NodeRegistersReportsReadyAndRenewsItsLease) {
  Edge edge(ca_, hub_->edge_port(), "edge-1");
  // edged asks for its lease first (KUBEEDGE-WIRE §11.1): 404 as an ObjectResp.
  auto reply = edge.request("query", "kube-node-lease/lease/edge-1", "null");
  EXPECT_EQ(reply.route.operation, "response");
  EXPECT_TRUE(reply.header.resource_version.empty());
  auto resp = object_resp(reply);
  EXPECT_TRUE(resp["Object"].is_null());
  EXPECT_EQ(resp["Err"]["ErrStatus"]["code"], 404);
  EXPECT_EQ(resp["Err"]["ErrStatus"]["reason"], "NotFound");

  reply = edge.request("insert", "null/node/edge-1", node_body("edge-1"));
  resp = object_resp(reply);
  EXPECT_TRUE(resp["Err"].is_null()) << reply.content;
  EXPECT_EQ(resp["Object"]["metadata"]["name"], "edge-1");
  // The Node is pushed down so edged's lookup after registration succeeds (§3.6).
  const auto pushed = edge.next_object("update", "null/node/edge-1");
  EXPECT_EQ(pushed.content_json()["kind"], "Node");

  // Registering again: AlreadyExists as an ObjectResp error.
  reply = edge.request("insert", "null/node/edge-1", node_body("edge-1"));
  EXPECT_EQ(object_resp(reply)["Err"]["ErrStatus"]["reason"], "AlreadyExists");

  const std::string patch =
      R"({"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"2026-11-27T00:00:00Z"}]}})";
  wire::Message string_content;
  string_content.set_content_string(patch);
  reply = edge.request("patch", "null/nodepatch/edge-1", string_content.content);
  resp = object_resp(reply);
  EXPECT_TRUE(resp["Err"].is_null()) << reply.content;
  EXPECT_FALSE(reply.header.resource_version.empty()) << "nodepatch replies carry the version";
  const auto node = store().get(res("nodes"), "", "edge-1");
  ASSERT_TRUE(node["status"]["conditions"].is_array());
  EXPECT_EQ(node["status"]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(node["status"]["conditions"][0]["status"], "True");

  json lease = {{"metadata", {{"name", "edge-1"}, {"namespace", "kube-node-lease"}}},
                {"spec", {{"holderIdentity", "edge-1"}, {"leaseDurationSeconds", 40},
                          {"renewTime", "2026-11-27T00:00:00.000000Z"}}}};
  reply = edge.request("insert", "kube-node-lease/lease/edge-1", lease.dump());
  resp = object_resp(reply);
  ASSERT_TRUE(resp["Err"].is_null()) << reply.content;
  lease = resp["Object"];
  lease["spec"]["renewTime"] = "2026-11-27T00:00:10.000000Z";
  reply = edge.request("update", "kube-node-lease/lease/edge-1", lease.dump());
  ASSERT_TRUE(object_resp(reply)["Err"].is_null()) << reply.content;
  EXPECT_EQ(store().get(res("leases.coordination.k8s.io"), "kube-node-lease", "edge-1")["spec"]["renewTime"],
            "2026-11-27T00:00:10.000000Z");

  // A node may not touch another node's lease or Node.
  reply = edge.request("query", "kube-node-lease/lease/edge-2", "null");
  EXPECT_EQ(object_resp(reply)["Err"]["ErrStatus"]["code"], 403);
  reply = edge.request("patch", "null/nodepatch/edge-2", string_content.content);
  EXPECT_EQ(object_resp(reply)["Err"]["ErrStatus"]["code"], 403);
}

TEST_P(HubIntegration, PodsAndWhatTheyReferenceReachExactlyTheirNodeInOrder) {
  auto edge1 = registered("edge-1");
  auto edge2 = registered("edge-2");
  store().create(res("configmaps"), "default",
                 {{"metadata", {{"name", "app-cfg"}}}, {"data", {{"k", "v1"}}}});
  store().create(res("secrets"), "default", {{"metadata", {{"name", "other"}}}, {"data", {{"x", "eQ=="}}}});
  const auto pod = create_pod("web", "edge-1",
                              {{"containers", json::array({{{"name", "c"}, {"image", "busybox"},
                                                            {"env", json::array({{{"name", "K"}, {"valueFrom", {{"configMapKeyRef", {{"name", "app-cfg"}, {"key", "k"}}}}}}})}}})}});
  const auto inserted = edge1->next_object("insert", "default/pod/web");
  EXPECT_EQ(inserted.content_json()["metadata"]["uid"], pod["metadata"]["uid"]);
  EXPECT_EQ(inserted.header.resource_version, pod["metadata"]["resourceVersion"].get<std::string>());
  edge1->next_object("update", "default/configmap/app-cfg");

  // The edge may read what its pod references, and nothing else.
  auto reply = edge1->request("query", "default/configmap/app-cfg", "null");
  EXPECT_EQ(reply.content_json()["data"]["k"], "v1");
  EXPECT_FALSE(reply.header.resource_version.empty());
  EXPECT_TRUE(wire::needs_ack(reply));
  reply = edge1->request("query", "default/secret/other", "null");
  EXPECT_EQ(reply.content_json()["ErrStatus"]["reason"], "Forbidden");
  EXPECT_EQ(reply.content_json()["ErrStatus"]["code"], 403);
  // Each handler says how its request ended; the counter is labelled from that.
  const std::string counted = hub_->metrics().expose();
  EXPECT_NE(counted.find(R"(edgehub_upstream_requests_total{operation="query",type="configmap",result="ok"} 1)"),
            std::string::npos)
      << counted;
  EXPECT_NE(counted.find(R"(edgehub_upstream_requests_total{operation="query",type="secret",result="error"} 1)"),
            std::string::npos)
      << counted;

  auto updated = pod;
  updated["metadata"]["labels"] = {{"tier", "front"}};
  store().update(res("pods"), "default", "web", updated);
  const auto update = edge1->next_object("update", "default/pod/web");
  EXPECT_EQ(update.content_json()["metadata"]["labels"]["tier"], "front");

  store().patch(res("configmaps"), "default", "app-cfg", devapi::PatchType::kMerge,
                json{{"data", {{"k", "v2"}}}});
  const auto cm = edge1->next_object("update", "default/configmap/app-cfg");
  EXPECT_EQ(cm.content_json()["data"]["k"], "v2");

  store().remove(res("pods"), "default", "web", {.grace_period_seconds = 0});
  const auto del = edge1->next_object("delete", "default/pod/web");
  EXPECT_EQ(del.content_json()["metadata"]["uid"], pod["metadata"]["uid"]);

  EXPECT_EQ(edge1->count("insert", "default/pod/web"), 1u) << "once";
  // edge-2 got nothing of it: it only ever received its own Node.
  edge2->request("query", "kube-node-lease/lease/edge-2", "null");  // flushes what was sent before
  for (const auto& m : edge2->received) {
    EXPECT_EQ(m.route.resource.find("default/"), std::string::npos) << m.route.resource;
  }
}

TEST_P(HubIntegration, EdgePodStatusAndDeleteAreLimitedToItsPods) {
  auto edge = registered("edge-1");
  create_pod("mine", "edge-1");
  create_pod("theirs", "edge-2");
  edge->next_object("insert", "default/pod/mine");
  wire::Message patch;
  patch.set_content_string(R"({"status":{"phase":"Running"}})");
  auto reply = edge->request("patch", "default/podpatch/mine", patch.content);
  ASSERT_TRUE(object_resp(reply)["Err"].is_null()) << reply.content;
  EXPECT_EQ(store().get(res("pods"), "default", "mine")["status"]["phase"], "Running");
  reply = edge->request("patch", "default/podpatch/theirs", patch.content);
  EXPECT_EQ(object_resp(reply)["Err"]["ErrStatus"]["code"], 403);
  reply = edge->request("delete", "default/pod/theirs", R"({"gracePeriodSeconds":0})");
  EXPECT_EQ(reply.content_json()["ErrStatus"]["code"], 403);
  reply = edge->request("delete", "default/pod/mine", R"({"gracePeriodSeconds":0})");
  EXPECT_EQ(reply.content_string(), "OK");
  EXPECT_TRUE(eventually([&] {
    try {
      store().get(res("pods"), "default", "mine");
      return false;
    } catch (const std::exception&) {
      return true;
    }
  }));
}

TEST_P(HubIntegration, ANodeReconnectingGetsWhatChangedWhileAway) {
  auto edge = registered("edge-1");
  auto pod = create_pod("web", "edge-1");
  edge->next_object("insert", "default/pod/web");
  edge->close();
  edge.reset();
  ASSERT_TRUE(eventually([&] { return hub_->sessions() == 0; }));
  pod["metadata"]["labels"] = {{"changed", "while-away"}};
  const auto stored = store().update(res("pods"), "default", "web", pod);
  Edge back(ca_, hub_->edge_port(), "edge-1");
  const auto update = back.next([&](const wire::Message& m) {
    return m.route.resource == "default/pod/web" &&
           m.header.resource_version == stored["metadata"]["resourceVersion"].get<std::string>();
  });
  EXPECT_EQ(update.route.operation, "update") << "as cloudcore's sync loop sends it";
  EXPECT_EQ(update.content_json()["metadata"]["labels"]["changed"], "while-away");
}

TEST_P(HubIntegration, AnEdgeThatDropsAcksGetsRetriesAndStallsNobodyElse) {
  auto slow = registered("edge-1");
  auto fine = registered("edge-2");
  slow->ack = false;
  create_pod("a", "edge-1");
  const auto first = slow->next_object("insert", "default/pod/a");
  create_pod("b", "edge-2");
  fine->next_object("insert", "default/pod/b");  // not held up by edge-1
  const auto retry = slow->next_object("insert", "default/pod/a");
  EXPECT_EQ(retry.header.msg_id, first.header.msg_id) << "the same message, re-sent";
  slow->ack = true;
  slow->next_object("insert", "default/pod/a");  // acked now; no more retries after this
}

TEST_P(HubIntegration, UnknownRequestsGetAnErrorAndTheConnectionStays) {
  auto edge = registered("edge-1");
  auto reply = edge->request("frobnicate", "default/widget/x", "null");
  EXPECT_EQ(reply.route.operation, "error");
  EXPECT_EQ(reply.content_json()["ErrStatus"]["code"], 405);
  reply = edge->request("query", "default/pods", "null");  // a resource of the wrong shape
  EXPECT_EQ(reply.route.operation, "error");
  reply = edge->request("get", "membership/detail", "\"{}\"", "resource", "twin");
  EXPECT_EQ(reply.route.group, "twin") << "confirmed, so the edge stops asking";
  reply = edge->request("query", "k8s/ca.crt", "null", "meta", "metamanager");
  EXPECT_EQ(reply.route.source, "cloudhub");
  EXPECT_NE(reply.content_string()->find("BEGIN CERTIFICATE"), std::string::npos);
}

TEST_P(HubIntegration, MetricsPassPromtool) {
  auto edge = registered("edge-1");
  edge->request("query", "kube-node-lease/lease/edge-1", "null");
  const auto port = std::to_string(hub_->admin_port());
  // One file per test process: both instances of this test may run at once.
  const auto scraped = ::testing::TempDir() + "metrics-" + std::to_string(::getpid()) + ".txt";
  const auto r = test::run({"/bin/sh", "-c",
                            "curl -sf http://127.0.0.1:" + port + "/metrics > " + scraped +
                                " && promtool check metrics < " + scraped +
                                " && grep -c '^edgehub_' " + scraped + "; s=$?; rm -f " +
                                scraped + "; exit $s"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto nodes = test::run({"/bin/sh", "-c", "curl -sf http://127.0.0.1:" + port + "/debug/nodes"});
  ASSERT_EQ(nodes.exit_code, 0);
  EXPECT_EQ(json::parse(nodes.out)["nodes"][0]["node"], "edge-1");
  const auto ready = test::run({"/bin/sh", "-c", "curl -sf http://127.0.0.1:" + port + "/readyz"});
  EXPECT_EQ(ready.out, "ok\n");
}

// hub.leaseWriteInterval: a renewal that comes soon after the session's last written one is
// answered with the edge's own Lease and not written; the next one after the interval is, with
// the renewTime the edge sent; a new session's first renewal always is; the rules still apply.
TEST(HubLeaseWrites, RenewalsWithinTheIntervalAreAnsweredAndTheNextOneIsWritten) {
  test::InProcessHubs hubs{"hub-lease"};
  auto options = hubs.options("hub-lease");
  options.config.hub.lease_write_interval = std::chrono::milliseconds(1500);
  auto& hub = hubs.start(std::move(options));
  const auto& leases = devapi::resource_by_name("leases.coordination.k8s.io");
  const auto stored_renew_time = [&] {
    return hubs.store().get(leases, "kube-node-lease", "edge-1")["spec"]["renewTime"];
  };
  const auto renew = [](Edge& edge, json& lease, const std::string& at) {
    lease["spec"]["renewTime"] = at;
    auto reply = edge.request("update", "kube-node-lease/lease/edge-1", lease.dump());
    auto resp = object_resp(reply);
    EXPECT_TRUE(resp["Err"].is_null()) << reply.content;
    lease = resp["Object"];
    EXPECT_EQ(lease["spec"]["renewTime"], at) << "the edge sees the renewTime it sent";
  };

  json lease;
  {
    Edge edge(hubs.ca(), hub.edge_port(), "edge-1");
    lease = {{"metadata", {{"name", "edge-1"}, {"namespace", "kube-node-lease"}}},
             {"spec", {{"holderIdentity", "edge-1"}, {"leaseDurationSeconds", 40},
                       {"renewTime", "2026-11-27T00:00:00.000000Z"}}}};
    auto reply = edge.request("insert", "kube-node-lease/lease/edge-1", lease.dump());
    ASSERT_TRUE(object_resp(reply)["Err"].is_null()) << reply.content;
    lease = object_resp(reply)["Object"];
    const auto version = lease["metadata"]["resourceVersion"];

    renew(edge, lease, "2026-11-27T00:00:10.000000Z");
    EXPECT_EQ(stored_renew_time(), "2026-11-27T00:00:00.000000Z") << "not written";
    EXPECT_EQ(lease["metadata"]["resourceVersion"], version);
    EXPECT_EQ(test::metric(hub, "edgehub_lease_renewals_not_written_total"), 1);
    // Another node's Lease is refused as before, recently written or not.
    reply = edge.request("update", "kube-node-lease/lease/edge-2", lease.dump());
    EXPECT_EQ(object_resp(reply)["Err"]["ErrStatus"]["code"], 403);

    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    renew(edge, lease, "2026-11-27T00:00:20.000000Z");
    EXPECT_EQ(stored_renew_time(), "2026-11-27T00:00:20.000000Z") << "written after the interval";
    EXPECT_NE(lease["metadata"]["resourceVersion"], version);
    renew(edge, lease, "2026-11-27T00:00:30.000000Z");
    EXPECT_EQ(stored_renew_time(), "2026-11-27T00:00:20.000000Z");
    EXPECT_EQ(test::metric(hub, "edgehub_lease_renewals_not_written_total"), 2);
  }
  // A new session writes its first renewal at once.
  Edge again(hubs.ca(), hub.edge_port(), "edge-1");
  renew(again, lease, "2026-11-27T00:00:40.000000Z");
  EXPECT_EQ(stored_renew_time(), "2026-11-27T00:00:40.000000Z");
  EXPECT_EQ(test::metric(hub, "edgehub_lease_renewals_not_written_total"), 2);
}

}  // namespace
}  // namespace edgehub::hub

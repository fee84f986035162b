// Server-side printing: GET with kubectl's Table Accept header, compared with a real
// kube-apiserver's Table (test/data/kube-samples/*/list-pods-table.body) and with the
// apiserver's printers for nodes, leases and the rest.
#include <gtest/gtest.h>

#include <edgehub/devapi/server.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "table.hpp"
#include "http_client.hpp"

namespace edgehub::devapi {
namespace {

using nlohmann::json;
using testing::HttpCall;

constexpr const char* kTableAccept =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json";

json sample(const std::string& name) {
  std::ifstream in(std::string(EDGEHUB_TEST_DATA) + "/kube-samples/v1.36.3/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

json get_table(std::uint16_t port, const std::string& target) {
  HttpCall call{"GET", target, "", "", {{"Accept", kTableAccept}}};
  auto r = testing::http_call(port, call);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  return json::parse(r.body);
}

std::vector<std::string> column_names(const json& table) {
  std::vector<std::string> out;
  for (const auto& c : table["columnDefinitions"]) out.push_back(c["name"]);
  return out;
}

class TableTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }
  Server server_{ServerOptions{}};
};

TEST_F(TableTest, PodsMatchTheApiServersTable) {
  const json recorded = sample("list-pods-table.body");
  json pod = sample("get-pod-a.body");
  const json status = pod["status"];
  pod["metadata"].erase("resourceVersion");
  pod["metadata"].erase("uid");
  server_.store().create("pods", "default", pod);
  server_.store().update("pods", "default", "pod-a", {{"status", status}}, true);

  const json table = get_table(server_.port(), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(table["kind"], "Table");
  EXPECT_EQ(table["apiVersion"], "meta.k8s.io/v1");
  EXPECT_TRUE(table["metadata"].contains("resourceVersion"));
  // Same columns, types, formats, priorities and descriptions as kube-apiserver v1.36.
  ASSERT_EQ(table["columnDefinitions"].size(), recorded["columnDefinitions"].size());
  for (std::size_t i = 0; i < recorded["columnDefinitions"].size(); ++i) {
    EXPECT_EQ(table["columnDefinitions"][i], recorded["columnDefinitions"][i]) << "column " << i;
  }
  ASSERT_EQ(table["rows"].size(), 1u);
  json cells = table["rows"][0]["cells"];
  json want = recorded["rows"][0]["cells"];
  cells[4] = want[4] = "age";  // the Age cell depends on the clock
  EXPECT_EQ(cells, want);
  const json& object = table["rows"][0]["object"];
  EXPECT_EQ(object["kind"], "PartialObjectMetadata");
  EXPECT_EQ(object["apiVersion"], "meta.k8s.io/v1");
  EXPECT_EQ(object["metadata"]["name"], "pod-a");
  EXPECT_FALSE(object.contains("spec"));

  // includeObject=Object carries the whole pod, None nothing; anything else is a 400.
  json full = get_table(server_.port(), "/api/v1/namespaces/default/pods?includeObject=Object");
  EXPECT_EQ(full["rows"][0]["object"]["kind"], "Pod");
  EXPECT_TRUE(full["rows"][0]["object"].contains("spec"));
  json none = get_table(server_.port(), "/api/v1/namespaces/default/pods/pod-a?includeObject=None");
  EXPECT_TRUE(none["rows"][0]["object"].is_null());
  HttpCall bad{"GET", "/api/v1/namespaces/default/pods?includeObject=All", "", "", {{"Accept", kTableAccept}}};
  EXPECT_EQ(testing::http_call(server_.port(), bad).status, 400);
}

TEST_F(TableTest, PodStatusColumnFollowsContainerStates) {
  auto make = [&](const std::string& name, const json& status, bool deleting = false) {
    json pod = {{"metadata", {{"name", name}}},
                {"spec", {{"containers", {{{"name", "a"}, {"image", "x"}}, {{"name", "b"}, {"image", "x"}}}}}}};
    if (deleting) pod["metadata"]["finalizers"] = {"test/keep"};
    server_.store().create("pods", "default", pod);
    server_.store().update("pods", "default", name, {{"status", status}}, true);
    if (deleting) server_.store().remove(resource_by_name("pods"), "default", name);
  };
  const json running = {{"running", {{"startedAt", "2026-11-27T00:00:00Z"}}}};
  make("ok", {{"phase", "Running"},
              {"containerStatuses",
               {{{"name", "a"}, {"ready", true}, {"restartCount", 0}, {"state", running}},
                {{"name", "b"}, {"ready", true}, {"restartCount", 2}, {"state", running}}}}});
  make("crash", {{"phase", "Running"},
                 {"containerStatuses",
                  {{{"name", "a"}, {"ready", true}, {"restartCount", 0}, {"state", running}},
                   {{"name", "b"},
                    {"ready", false},
                    {"restartCount", 5},
                    {"state", {{"waiting", {{"reason", "CrashLoopBackOff"}}}}}}}}});
  make("init", {{"phase", "Pending"},
                {"initContainerStatuses",
                 {{{"name", "i"}, {"ready", false}, {"restartCount", 0},
                   {"state", {{"waiting", {{"reason", "PodInitializing"}}}}}}}}});
  make("gone", {{"phase", "Running"}}, true);

  const json table = get_table(server_.port(), "/api/v1/namespaces/default/pods");
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& r : table["rows"]) {
    rows[r["cells"][0]] = {r["cells"][1], r["cells"][2], r["cells"][3]};
  }
  EXPECT_EQ(rows["ok"], (std::vector<std::string>{"2/2", "Running", "2"}));
  EXPECT_EQ(rows["crash"], (std::vector<std::string>{"1/2", "CrashLoopBackOff", "5"}));
  EXPECT_EQ(rows["init"], (std::vector<std::string>{"0/2", "Init:0/0", "0"}));
  EXPECT_EQ(rows["gone"], (std::vector<std::string>{"0/2", "Terminating", "0"}));
}

TEST_F(TableTest, NodesShowStatusRolesAndVersion) {
  auto node = [&](const std::string& name, const json& labels, const json& conditions,
                  bool unschedulable = false) {
    json n = {{"metadata", {{"name", name}, {"labels", labels}}}, {"spec", json::object()}};
    if (unschedulable) n["spec"]["unschedulable"] = true;
    server_.store().create("nodes", "", n);
    json status = {{"nodeInfo", {{"kubeletVersion", "v1.32.10-kubeedge"}, {"osImage", "Debian"}}},
                   {"addresses", {{{"type", "InternalIP"}, {"address", "10.0.0.7"}}}}};
    if (!conditions.is_null()) status["conditions"] = conditions;
    server_.store().update("nodes", "", name, {{"status", status}}, true);
  };
  node("edge-ready",
       {{"node-role.kubernetes.io/edge", ""}, {"node-role.kubernetes.io/agent", ""}},
       {{{"type", "Ready"}, {"status", "True"}}});
  node("edge-down", {{"kubernetes.io/role", "worker"}}, {{{"type", "Ready"}, {"status", "Unknown"}}},
       true);
  node("edge-new", json::object(), nullptr);

  const json table = get_table(server_.port(), "/api/v1/nodes");
  EXPECT_EQ(column_names(table),
            (std::vector<std::string>{"Name", "Status", "Roles", "Age", "Version", "Internal-IP",
                                      "External-IP", "OS-Image", "Kernel-Version",
                                      "Container-Runtime"}));
  std::map<std::string, json> rows;
  for (const auto& r : table["rows"]) rows[r["cells"][0]] = r["cells"];
  EXPECT_EQ(rows["edge-ready"][1], "Ready");
  EXPECT_EQ(rows["edge-ready"][2], "agent,edge");
  EXPECT_EQ(rows["edge-ready"][4], "v1.32.10-kubeedge");
  EXPECT_EQ(rows["edge-ready"][5], "10.0.0.7");
  EXPECT_EQ(rows["edge-ready"][6], "<none>");
  EXPECT_EQ(rows["edge-ready"][7], "Debian");
  EXPECT_EQ(rows["edge-ready"][8], "<unknown>");
  EXPECT_EQ(rows["edge-down"][1], "NotReady,SchedulingDisabled");
  EXPECT_EQ(rows["edge-down"][2], "worker");
  EXPECT_EQ(rows["edge-new"][1], "Unknown");
  EXPECT_EQ(rows["edge-new"][2], "<none>");

  // A single object is a one-row Table too.
  const json one = get_table(server_.port(), "/api/v1/nodes/edge-ready");
  ASSERT_EQ(one["rows"].size(), 1u);
  EXPECT_EQ(one["rows"][0]["cells"][1], "Ready");
}

TEST_F(TableTest, LeasesNodeSyncsConfigMapsAndTheRest) {
  server_.store().create("leases.coordination.k8s.io", "kube-node-lease",
                         {{"metadata", {{"name", "edge-1"}}}, {"spec", {{"holderIdentity", "edge-1"}}}});
  server_.store().create("nodesyncs.edgehub.io", "", {{"metadata", {{"name", "edge-1"}}}});
  server_.store().update("nodesyncs.edgehub.io", "", "edge-1", {{"status", {{"owner", "hub-0"}}}},
                         true);
  server_.store().create("configmaps", "default",
                         {{"metadata", {{"name", "cfg"}}}, {"data", {{"a", "1"}, {"b", "2"}}}});
  server_.store().create("serviceaccounts", "default", {{"metadata", {{"name", "robot"}}}});

  auto only_row = [&](const std::string& target) {
    const json t = get_table(server_.port(), target);
    EXPECT_EQ(t["rows"].size(), 1u) << t.dump();
    return std::make_pair(column_names(t), t["rows"][0]["cells"]);
  };
  auto [lease_cols, lease] = only_row("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
  EXPECT_EQ(lease_cols, (std::vector<std::string>{"Name", "Holder", "Age"}));
  EXPECT_EQ(lease[1], "edge-1");
  auto [sync_cols, sync] = only_row("/apis/edgehub.io/v1alpha1/nodesyncs");
  EXPECT_EQ(sync_cols, (std::vector<std::string>{"Name", "Owner", "Age"}));
  EXPECT_EQ(sync[1], "hub-0");
  auto [cm_cols, cm] = only_row("/api/v1/namespaces/default/configmaps");
  EXPECT_EQ(cm_cols, (std::vector<std::string>{"Name", "Data", "Age"}));
  EXPECT_EQ(cm[1], 2);
  auto [sa_cols, sa] = only_row("/api/v1/namespaces/default/serviceaccounts");
  EXPECT_EQ(sa_cols, (std::vector<std::string>{"Name", "Age"}));
  EXPECT_EQ(sa[0], "robot");

  // Without the Table Accept header the plain list comes back.
  auto plain = testing::http_get(server_.port(), "/api/v1/namespaces/default/configmaps");
  EXPECT_EQ(plain.json()["kind"], "ConfigMapList");
}

TEST(TableFormat, AcceptHeaderChoosesTheFirstServableType) {
  using detail::table_version_wanted;
  EXPECT_EQ(table_version_wanted(kTableAccept), "v1");
  EXPECT_EQ(table_version_wanted("application/json;as=Table;v=v1beta1;g=meta.k8s.io"), "v1beta1");
  EXPECT_EQ(table_version_wanted("application/json"), std::nullopt);
  EXPECT_EQ(table_version_wanted(""), std::nullopt);
  EXPECT_EQ(table_version_wanted("application/json, application/json;as=Table;v=v1;g=meta.k8s.io"),
            std::nullopt);
  EXPECT_EQ(table_version_wanted("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
                                 "application/json;as=Table;v=v1;g=meta.k8s.io"),
            "v1");
  EXPECT_EQ(table_version_wanted("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"),
            std::nullopt);
}

TEST(TableFormat, HumanDurationAsGo) {
  using detail::human_duration;
  using std::chrono::seconds;
  EXPECT_EQ(human_duration(seconds(-5)), "<invalid>");
  EXPECT_EQ(human_duration(seconds(-1)), "0s");
  EXPECT_EQ(human_duration(seconds(2)), "2s");
  EXPECT_EQ(human_duration(seconds(119)), "119s");
  EXPECT_EQ(human_duration(seconds(120)), "2m");
  EXPECT_EQ(human_duration(seconds(200)), "3m20s");
  EXPECT_EQ(human_duration(seconds(45 * 60)), "45m");
  EXPECT_EQ(human_duration(seconds(5 * 3600 + 120)), "5h2m");
  EXPECT_EQ(human_duration(seconds(20 * 3600)), "20h");
  EXPECT_EQ(human_duration(seconds(3 * 86400 + 4 * 3600)), "3d4h");
  EXPECT_EQ(human_duration(seconds(100 * 86400)), "100d");
  EXPECT_EQ(human_duration(seconds(3 * 365 * 86400 + 10 * 86400)), "3y10d");
  EXPECT_EQ(human_duration(seconds(10LL * 365 * 86400)), "10y");
}

}  // namespace
}  // namespace edgehub::devapi

// A compromised edge (its own valid certificate, an attacker's program) against a real hub and
// the embedded API server: whatever it sends, it can do no more than the kubelet of its node
// could under Kubernetes' Node authorizer and NodeRestriction admission (issue #16, items 1, 2,
// 3 and 10). Each attack is refused with a Forbidden reply, and the API server's state is as
// before: no pod created, no label set, no token minted, no other object patched.
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <mutex>

#include "edge.hpp"
#include "hubs.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Edge;
using test::eventually;

// Every request the API server receives, as "METHOD target".
struct ApiLog {
  std::mutex mutex;
  std::vector<std::string> requests;
  bool any(const std::function<bool(const std::string&)>& pred) {
    std::lock_guard lock(mutex);
    return std::any_of(requests.begin(), requests.end(), pred);
  }
};

devapi::ServerOptions logging(ApiLog& log) {
  devapi::ServerOptions options;
  options.response_delay = [&log](std::string_view method, std::string_view target) {
    std::lock_guard lock(log.mutex);
    log.requests.push_back(std::string(method) + " " + std::string(target));
    return 0ms;
  };
  return options;
}

std::string as_string(const std::string& text) {
  wire::Message m;
  m.set_content_string(text);
  return m.content;
}

class NodeAuthz : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = &hubs_.start(hubs_.options("hub-authz"));
    edge_ = std::make_unique<Edge>(hubs_.ca(), hub_->edge_port(), "edge-1");
    const json node = {{"metadata",
                        {{"name", "edge-1"},
                         {"labels", {{"node-role.kubernetes.io/edge", ""},
                                     {"node-role.kubernetes.io/agent", ""},
                                     {"kubernetes.io/hostname", "edge-1"}}}}}};
    const auto reply = edge_->request("insert", "null/node/edge-1", node.dump());
    ASSERT_TRUE(reply.content_json()["Err"].is_null()) << reply.content;
    edge_->next_object("update", "null/node/edge-1");
    ASSERT_TRUE(eventually([&] { return hubs_.owner("edge-1") == "hub-authz"; }));
    // Objects of the cluster the edge must not reach.
    store().create(res("secrets"), "edgehub",
                   {{"metadata", {{"name", "casecret"}}}, {"data", {{"ca.key", "c2VjcmV0"}}}});
    store().create(res("serviceaccounts"), "edgehub", {{"metadata", {{"name", "edgehub"}}}});
    store().create(res("serviceaccounts"), "default", {{"metadata", {{"name", "app-sa"}}}});
    mine_ = create_pod("mine", "edge-1", "app-sa");
    theirs_ = create_pod("theirs", "control-plane", "edgehub");
    edge_->next_object("insert", "default/pod/mine");
  }

  devapi::Store& store() { return hubs_.store(); }
  static const devapi::ResourceInfo& res(const char* name) {
    return devapi::resource_by_name(name);
  }
  json create_pod(const std::string& name, const std::string& node, const std::string& sa) {
    const json pod = {
        {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"app", name}}}}},
        {"spec",
         {{"nodeName", node},
          {"serviceAccountName", sa},
          {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
    return store().create(res("pods"), "default", pod);
  }
  json node() { return store().get(res("nodes"), "", "edge-1"); }
  bool pod_exists(const std::string& ns, const std::string& name) {
    try {
      store().get(res("pods"), ns, name);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  double denied(const std::string& type, const std::string& reason) {
    return test::metric(*hub_, "edgehub_upstream_denied_total{type=\"" + type + "\",reason=\"" +
                                   reason + "\"}");
  }
  // The Forbidden status of a reply, whether an ObjectResp or a bare StatusError.
  static json status(const wire::Message& reply) {
    const auto content = reply.content_json();
    if (content.contains("Err")) return content["Err"]["ErrStatus"];
    return content.value("ErrStatus", json());
  }
  // A mirror pod as kubelet makes it for a static pod, owned by edge-1's Node.
  json mirror_pod(const std::string& name, const std::string& ns = "default") {
    return {{"metadata",
             {{"name", name},
              {"namespace", ns},
              {"annotations", {{"kubernetes.io/config.mirror", "hash"}}},
              {"ownerReferences",
               json::array({{{"apiVersion", "v1"},
                             {"kind", "Node"},
                             {"name", "edge-1"},
                             {"uid", node()["metadata"]["uid"]},
                             {"controller", true}}})}}},
            {"spec",
             {{"nodeName", "edge-1"},
              {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
  }

  ApiLog log_;
  test::InProcessHubs hubs_{"security-authz", logging(log_)};
  Hub* hub_ = nullptr;
  std::unique_ptr<Edge> edge_;
  json mine_;
  json theirs_;
};

// Item 1: a pod in any namespace that mounts the hub's Secrets or runs as its account.
TEST_F(NodeAuthz, PodInsertCannotReferenceSecretsOrServiceAccounts) {
  json stealer = {{"metadata", {{"name", "stealer"}, {"namespace", "edgehub"}}},
                  {"spec",
                   {{"nodeName", "edge-1"},
                    {"serviceAccountName", "edgehub"},
                    {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})},
                    {"volumes", json::array({{{"name", "ca"},
                                              {"secret", {{"secretName", "casecret"}}}}})}}}};
  auto reply = edge_->request("insert", "edgehub/pod/stealer", stealer.dump());
  EXPECT_EQ(status(reply)["code"], 403) << reply.content;
  EXPECT_FALSE(pod_exists("edgehub", "stealer"));

  // Dressed as a mirror pod, but still with the account, or the secret, or another owner.
  auto dressed = mirror_pod("stealer", "edgehub");
  dressed["spec"]["serviceAccountName"] = "edgehub";
  reply = edge_->request("insert", "edgehub/pod/stealer", dressed.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  dressed = mirror_pod("stealer", "edgehub");
  dressed["spec"]["volumes"] = stealer["spec"]["volumes"];
  reply = edge_->request("insert", "edgehub/pod/stealer", dressed.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  dressed = mirror_pod("stealer", "edgehub");
  dressed["metadata"]["ownerReferences"][0]["uid"] = "forged";
  reply = edge_->request("insert", "edgehub/pod/stealer", dressed.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  EXPECT_FALSE(pod_exists("edgehub", "stealer"));
  EXPECT_GE(denied("pod", "references"), 2.0);
  EXPECT_GE(denied("pod", "not_mirror_pod"), 2.0);

  // Its secret was never handed out, and no token for the hub's account was asked for.
  reply = edge_->request("query", "edgehub/secret/casecret", "null");
  EXPECT_EQ(status(reply)["code"], 403);
  EXPECT_FALSE(log_.any([](const std::string& r) { return r.find("/secrets/casecret") != r.npos; }));

  // What kubelet does for a static pod still works.
  reply = edge_->request("insert", "edgehub/pod/static-web", mirror_pod("static-web", "edgehub").dump());
  EXPECT_TRUE(reply.content_json()["Err"].is_null()) << reply.content;
  EXPECT_TRUE(pod_exists("edgehub", "static-web"));
}

// Item 2: labels that steer workloads, and status writes that are not status.
TEST_F(NodeAuthz, NodeLabelsAndPodLabelsCannotBeSteered) {
  const auto before = node()["metadata"]["labels"];
  json update = {{"metadata",
                  {{"name", "edge-1"},
                   {"labels", {{"node-restriction.kubernetes.io/pci", "true"}}}}}};
  auto reply = edge_->request("update", "null/node/edge-1", update.dump());
  EXPECT_EQ(status(reply)["code"], 403) << reply.content;
  update["metadata"]["labels"] = {{"node-role.kubernetes.io/control-plane", ""}};
  reply = edge_->request("update", "null/node/edge-1", update.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  update["metadata"]["labels"] = {{"node-role.kubernetes.io/edge", nullptr}};  // leave edgehub
  reply = edge_->request("update", "null/node/edge-1", update.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  reply = edge_->request(
      "patch", "null/nodepatch/edge-1",
      as_string(R"({"metadata":{"labels":{"node-role.kubernetes.io/master":""}},"status":{}})"));
  EXPECT_EQ(status(reply)["code"], 403);
  reply = edge_->request("patch", "null/nodepatch/edge-1",
                         as_string(R"({"spec":{"taints":[],"unschedulable":false}})"));
  EXPECT_EQ(status(reply)["code"], 403);
  EXPECT_EQ(node()["metadata"]["labels"], before);
  EXPECT_GE(denied("node", "labels"), 3.0);
  EXPECT_GE(denied("nodepatch", "labels"), 1.0);
  EXPECT_GE(denied("nodepatch", "not_status"), 1.0);

  // A Node for another name, or with restricted labels, is not registered.
  reply = edge_->request("insert", "null/node/control-plane", R"({"metadata":{}})");
  EXPECT_EQ(status(reply)["code"], 403);

  // Joining another Service's endpoints by relabelling its own pod through pods/status.
  reply = edge_->request(
      "patch", "default/podpatch/mine",
      as_string(R"({"metadata":{"labels":{"app":"payments"}},"status":{"phase":"Running"}})"));
  EXPECT_EQ(status(reply)["code"], 403);
  EXPECT_EQ(store().get(res("pods"), "default", "mine")["metadata"]["labels"]["app"], "mine");
  EXPECT_GE(denied("podpatch", "not_status"), 1.0);

  // What edged sends still works: its labels unchanged, an allowed one added, a status patch.
  update["metadata"]["labels"] = before;
  update["metadata"]["labels"]["example.com/rack"] = "7";
  reply = edge_->request("update", "null/node/edge-1", update.dump());
  EXPECT_EQ(reply.content_string(), "OK") << reply.content;
  EXPECT_EQ(node()["metadata"]["labels"]["example.com/rack"], "7");
  reply = edge_->request("patch", "default/podpatch/mine",
                         as_string(R"({"metadata":{"uid":")" +
                                   mine_["metadata"]["uid"].get<std::string>() +
                                   R"("},"status":{"phase":"Running"}})"));
  EXPECT_TRUE(reply.content_json()["Err"].is_null()) << reply.content;
  EXPECT_EQ(store().get(res("pods"), "default", "mine")["status"]["phase"], "Running");
}

// Item 3: tokens for any account, unbound, or bound to another node's pod.
TEST_F(NodeAuthz, ServiceAccountTokensOnlyForOwnPodsAccounts) {
  auto token_posts = [&] {
    return log_.any([](const std::string& r) { return r.find("/token") != r.npos; });
  };
  const json unbound = {{"spec", {{"audiences", json::array({"https://kubernetes.default.svc"})},
                                  {"expirationSeconds", 315360000}}}};
  auto reply = edge_->request("query", "edgehub/serviceaccounttoken/edgehub", unbound.dump());
  EXPECT_EQ(status(reply)["code"], 403) << reply.content;
  json bound = {{"spec",
                 {{"boundObjectRef",
                   {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", "theirs"},
                    {"uid", theirs_["metadata"]["uid"]}}}}}};
  reply = edge_->request("query", "default/serviceaccounttoken/edgehub", bound.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  // Its own pod, but another account than the pod's.
  bound["spec"]["boundObjectRef"]["name"] = "mine";
  bound["spec"]["boundObjectRef"]["uid"] = mine_["metadata"]["uid"];
  reply = edge_->request("query", "default/serviceaccounttoken/edgehub", bound.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  // Its own pod's account, for ten years.
  bound["spec"]["expirationSeconds"] = 315360000;
  reply = edge_->request("query", "default/serviceaccounttoken/app-sa", bound.dump());
  EXPECT_EQ(status(reply)["code"], 403);
  EXPECT_FALSE(token_posts()) << "no token request reached the API server";
  EXPECT_GE(denied("serviceaccounttoken", "token_binding"), 3.0);
  EXPECT_GE(denied("serviceaccounttoken", "token_limits"), 1.0);

  // As kubelet asks for a projected token: granted, bound to the pod.
  bound["spec"]["expirationSeconds"] = 3607;
  bound["spec"]["audiences"] = json::array({"https://kubernetes.default.svc"});
  reply = edge_->request("query", "default/serviceaccounttoken/app-sa", bound.dump());
  const auto granted = reply.content_json();
  EXPECT_TRUE(granted["status"]["token"].is_string()) << reply.content;
  EXPECT_EQ(granted["spec"]["boundObjectRef"]["name"], "mine");
}

// Item 10: names that would change the URL the hub calls.
TEST_F(NodeAuthz, NamesCannotInjectPaths) {
  const auto labels = store().get(res("pods"), "default", "mine")["metadata"]["labels"];
  const std::string relabel =
      as_string(R"({"metadata":{"labels":{"app":"payments"}},"status":{}})");
  // `mine?` would turn PATCH …/pods/mine?/status into a PATCH of the pod itself.
  for (const char* name : {"mine?", "mine?x=1", "mine%3F", "..", "mine%2Fstatus", "Mine",
                           "mine#"}) {
    const auto reply = edge_->request("patch", std::string("default/podpatch/") + name, relabel);
    EXPECT_EQ(status(reply)["code"], 403) << name << ": " << reply.content;
    const auto del = edge_->request("delete", std::string("default/pod/") + name, "null");
    EXPECT_EQ(status(del)["code"], 403) << name;
  }
  for (const char* ns : {"default?", "..", "kube-system%2F"}) {
    const auto reply = edge_->request("query", std::string(ns) + "/secret/casecret", "null");
    EXPECT_EQ(status(reply)["code"], 403) << ns;
  }
  // A legacy podstatus names its pods in the content.
  const auto reply = edge_->request(
      "update", "default/podstatus",
      R"([{"Name":"mine?","Status":{"phase":"Failed"}}])");
  EXPECT_EQ(status(reply)["code"], 403) << reply.content;
  EXPECT_EQ(store().get(res("pods"), "default", "mine")["metadata"]["labels"], labels);
  EXPECT_TRUE(pod_exists("default", "mine"));
  EXPECT_FALSE(log_.any([](const std::string& r) {
    return r.find('?') != r.npos && r.find("/pods/mine") != r.npos;
  })) << "no such request reached the API server";
  EXPECT_FALSE(log_.any([](const std::string& r) {
    return r.find("mine%") != r.npos || r.find("/..") != r.npos || r.find("/Mine") != r.npos;
  }));
  EXPECT_GE(denied("podpatch", "invalid_name"), 7.0);
}

}  // namespace
}  // namespace edgehub::hub

#include <edgehub/authz/rules.hpp>
#include <gtest/gtest.h>

namespace edgehub::authz {
namespace {

using nlohmann::json;

constexpr const char* kNode = "edge-1";
constexpr const char* kNodeUid = "e52d2d94-cfa0-4b33-bb50-02398d9d0477";

// A mirror pod as kubelet creates it for a static pod.
json mirror_pod() {
  return json::parse(R"({
    "metadata": {"name": "web-edge-1", "namespace": "default",
      "annotations": {"kubernetes.io/config.mirror": "3f2a", "kubernetes.io/config.source": "file"},
      "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "edge-1",
                           "uid": "e52d2d94-cfa0-4b33-bb50-02398d9d0477", "controller": true}]},
    "spec": {"nodeName": "edge-1",
      "containers": [{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "b"}]}],
      "volumes": [{"name": "data", "hostPath": {"path": "/data"}},
                  {"name": "tmp", "emptyDir": {}},
                  {"name": "info", "downwardAPI": {"items": []}}]}})");
}

TEST(MirrorPod, KubeletsMirrorPodIsAllowed) {
  EXPECT_TRUE(mirror_pod_create(kNode, kNodeUid, mirror_pod()));
}

TEST(MirrorPod, NeedsTheMirrorAnnotation) {
  auto pod = mirror_pod();
  pod["metadata"]["annotations"].erase("kubernetes.io/config.mirror");
  EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::not_mirror_pod);
  pod["metadata"].erase("annotations");
  EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::not_mirror_pod);
}

TEST(MirrorPod, MustBeBoundToTheNode) {
  auto pod = mirror_pod();
  pod["spec"]["nodeName"] = "control-plane";
  EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::other_node);
  pod["spec"].erase("nodeName");
  EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::other_node);
}

TEST(MirrorPod, OwnerIsTheNodeItselfWithItsUid) {
  const auto base = mirror_pod();
  auto change = [&](auto edit) {
    auto pod = base;
    edit(pod["metadata"]["ownerReferences"]);
    return mirror_pod_create(kNode, kNodeUid, pod).reason;
  };
  EXPECT_EQ(change([](json& o) { o = json::array(); }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o.push_back(o[0]); }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["name"] = "edge-2"; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["kind"] = "ReplicaSet"; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["apiVersion"] = "apps/v1"; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["uid"] = "another"; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0].erase("uid"); }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0].erase("controller"); }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["controller"] = false; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["blockOwnerDeletion"] = true; }), Reason::not_mirror_pod);
  EXPECT_EQ(change([](json& o) { o[0]["blockOwnerDeletion"] = false; }), Reason::allowed);
  // The Node's UID could not be read: nothing matches it.
  EXPECT_EQ(mirror_pod_create(kNode, "", base).reason, Reason::not_mirror_pod);
  auto pod = base;
  pod["metadata"].erase("ownerReferences");
  EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::not_mirror_pod);
}

TEST(MirrorPod, ReferencesNoOtherObject) {
  const auto base = mirror_pod();
  const json specs[] = {
      json{{"serviceAccountName", "edgehub"}},
      json{{"serviceAccount", "edgehub"}},
      json{{"imagePullSecrets", {{{"name", "registry"}}}}},
      json{{"resourceClaims", {{{"name", "gpu"}}}}},
      json{{"volumes", {{{"name", "v"}, {"secret", {{"secretName", "casecret"}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"configMap", {{"name", "c"}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"persistentVolumeClaim", {{"claimName", "c"}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"ephemeral", json::object()}}}}},
      json{{"volumes",
            {{{"name", "v"},
              {"projected", {{"sources", {{{"secret", {{"name", "s"}}}}}}}}}}}},
      json{{"volumes",
            {{{"name", "v"},
              {"projected", {{"sources", {{{"clusterTrustBundle", {{"name", "b"}}}}}}}}}}}},
      json{{"volumes",
            {{{"name", "v"},
              {"projected",
               {{"sources", {{{"serviceAccountToken", {{"path", "token"}}}}}}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"csi", {{"nodePublishSecretRef", {{"name", "s"}}}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"rbd", {{"secretRef", {{"name", "s"}}}}}}}}},
      json{{"volumes", {{{"name", "v"}, {"azureFile", {{"secretName", "s"}}}}}}},
      json{{"containers", {{{"name", "c"}, {"envFrom", {{{"secretRef", {{"name", "s"}}}}}}}}}},
      json{{"initContainers",
            {{{"name", "c"}, {"envFrom", {{{"configMapRef", {{"name", "c"}}}}}}}}}},
      json{{"ephemeralContainers",
            {{{"name", "c"},
              {"env", {{{"name", "X"}, {"valueFrom", {{"secretKeyRef", {{"name", "s"}}}}}}}}}}}},
      json{{"containers",
            {{{"name", "c"},
              {"env",
               {{{"name", "X"}, {"valueFrom", {{"configMapKeyRef", {{"name", "c"}}}}}}}}}}}},
  };
  for (const auto& extra : specs) {
    auto pod = base;
    for (const auto& [key, value] : extra.items()) pod["spec"][key] = value;
    EXPECT_EQ(mirror_pod_create(kNode, kNodeUid, pod).reason, Reason::references) << extra;
  }
  auto pod = base;
  pod["spec"]["serviceAccountName"] = "";  // empty is no account
  EXPECT_TRUE(mirror_pod_create(kNode, kNodeUid, pod));
}

TEST(MirrorPod, MalformedIsRefused) {
  EXPECT_FALSE(mirror_pod_create(kNode, kNodeUid, json()));
  EXPECT_FALSE(mirror_pod_create(kNode, kNodeUid, json::array()));
  EXPECT_FALSE(mirror_pod_create(kNode, kNodeUid, json{{"metadata", 1}, {"spec", {}}}));
  auto pod = mirror_pod();
  pod["spec"]["volumes"] = json{{"v", 1}};
  EXPECT_TRUE(mirror_pod_create(kNode, kNodeUid, pod));  // not a list: the API refuses it
  pod["spec"]["volumes"] = json::array({1, "x", nullptr});
  EXPECT_FALSE(mirror_pod_create(kNode, kNodeUid, pod));
}

TEST(PodStatus, StatusWithUidPreconditionIsAllowed) {
  EXPECT_TRUE(pod_status_patch(json::parse(
      R"({"metadata":{"uid":"bad5"},"status":{"phase":"Running","conditions":[]}})")));
  EXPECT_TRUE(pod_status_patch(json::object()));
}

TEST(PodStatus, MetadataAndSpecAreRefused) {
  for (const char* patch : {
           R"({"metadata":{"labels":{"app":"payments"}},"status":{}})",
           R"({"metadata":{"annotations":{"a":"b"}}})",
           R"({"metadata":{"ownerReferences":[]}})",
           R"({"metadata":{"finalizers":["x"]}})",
           R"({"spec":{"nodeName":"other"}})",
           R"({"$patch":"replace","status":{}})",
           R"({"status":{"resourceClaimStatuses":[]}})",
           R"({"metadata":"x"})",
       }) {
    EXPECT_FALSE(pod_status_patch(json::parse(patch))) << patch;
  }
  EXPECT_EQ(pod_status_patch(json::parse(R"({"metadata":{"labels":{}}})")).reason,
            Reason::not_status);
  EXPECT_EQ(pod_status_patch(json::array()).reason, Reason::invalid_body);
  EXPECT_EQ(pod_status_patch(json::parse(R"({"status":[]})")).reason, Reason::invalid_body);
}

}  // namespace
}  // namespace edgehub::authz

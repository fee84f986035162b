#include <edgehub/authz/rules.hpp>
#include <gtest/gtest.h>

namespace edgehub::authz {
namespace {

using nlohmann::json;

TEST(NodeLabels, KubeletsOwnAndUnrestrictedLabels) {
  for (const char* key :
       {"kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone", "node.kubernetes.io/instance-type",
        "beta.kubernetes.io/instance-type", "kubelet.kubernetes.io/x", "node.kubernetes.io/x",
        "foo.node.kubernetes.io/x", "example.com/rack", "plain", "kubernetes.io.evil.com/x"}) {
    EXPECT_TRUE(node_may_set_label(key)) << key;
  }
}

TEST(NodeLabels, RestrictedLabels) {
  for (const char* key :
       {"node-restriction.kubernetes.io/pci", "a.node-restriction.kubernetes.io/x",
        "node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/edge",
        "kubernetes.io/role", "k8s.io/x", "foo.k8s.io/x", "example.kubernetes.io/x"}) {
    EXPECT_FALSE(node_may_set_label(key)) << key;
  }
}

TEST(NodeCreate, KubeEdgeRoleLabelsOnlyEmptyAtRegistration) {
  auto node = json::parse(R"({"metadata":{"name":"edge-1","labels":{
      "kubernetes.io/hostname":"edge-1","node-role.kubernetes.io/edge":"",
      "node-role.kubernetes.io/agent":"","site":"bank-7"}},"spec":{}})");
  EXPECT_TRUE(node_create("edge-1", node));
  node["metadata"]["labels"]["node-role.kubernetes.io/edge"] = "true";
  EXPECT_EQ(node_create("edge-1", node).reason, Reason::labels);
  node["metadata"]["labels"]["node-role.kubernetes.io/edge"] = "";
  node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = "";
  EXPECT_EQ(node_create("edge-1", node).reason, Reason::labels);
  node["metadata"]["labels"].erase("node-role.kubernetes.io/control-plane");
  node["metadata"]["labels"]["node-restriction.kubernetes.io/secure"] = "yes";
  EXPECT_EQ(node_create("edge-1", node).reason, Reason::labels);
}

TEST(NodeCreate, OwnNameAndNoConfigSource) {
  EXPECT_EQ(node_create("edge-1", json::parse(R"({"metadata":{"name":"master"}})")).reason,
            Reason::other_node);
  EXPECT_EQ(node_create("edge-1", json::parse(R"({"spec":{"configSource":{"configMap":{}}}})"))
                .reason,
            Reason::config_source);
  EXPECT_TRUE(node_create("edge-1", json()));  // edgecore's body may be empty
  EXPECT_FALSE(node_create("edge-1", json::parse(R"({"metadata":{"labels":[]}})")));
}

TEST(NodeUpdate, UnchangedRestrictedLabelsPass) {
  const auto old = json::parse(R"({"node-role.kubernetes.io/edge":"","kubernetes.io/os":"linux"})");
  EXPECT_TRUE(node_labels_update(old, old));
  EXPECT_TRUE(node_labels_update(old, json::parse(R"({"kubernetes.io/os":"windows","a":"b"})")));
  EXPECT_TRUE(node_labels_update(old, json()));
}

TEST(NodeUpdate, RestrictedLabelsAreImmutable) {
  const auto old = json::parse(R"({"node-role.kubernetes.io/edge":""})");
  // Removing the edge label would hide the node from edgehub; changing, adding others, no.
  for (const char* patch : {R"({"node-role.kubernetes.io/edge":null})",
                            R"({"node-role.kubernetes.io/edge":"x"})",
                            R"({"node-role.kubernetes.io/agent":""})",
                            R"({"node-role.kubernetes.io/master":""})",
                            R"({"node-restriction.kubernetes.io/pci":"true"})",
                            R"({"$patch":"replace"})"}) {
    EXPECT_EQ(node_labels_update(old, json::parse(patch)).reason, Reason::labels) << patch;
  }
  // Unknown current labels (the Node could not be read): any restricted key counts as a change.
  EXPECT_EQ(node_labels_update(json(), old).reason, Reason::labels);
  EXPECT_EQ(node_labels_update(old, json::array()).reason, Reason::invalid_body);
}

TEST(NodeStatusPatch, StatusAndKubeletReRegistration) {
  const auto old = json::parse(R"({"node-role.kubernetes.io/edge":""})");
  EXPECT_TRUE(node_status_patch(json::object(), old));
  EXPECT_TRUE(node_status_patch(
      json::parse(R"({"status":{"$setElementOrder/conditions":[{"type":"Ready"}],
                   "conditions":[{"type":"Ready","status":"True"}]}})"),
      old));
  EXPECT_TRUE(node_status_patch(
      json::parse(R"({"metadata":{"labels":{"kubernetes.io/os":"linux"},
                   "annotations":{"volumes.kubernetes.io/controller-managed-attach-detach":"true"}}})"),
      old));
  EXPECT_FALSE(patch_touches_labels(json::parse(R"({"status":{}})")));
  EXPECT_TRUE(patch_touches_labels(json::parse(R"({"metadata":{"labels":{}}})")));
}

TEST(NodeStatusPatch, SpecAndOtherMetadataAreRefused) {
  const auto old = json::object();
  for (const char* patch : {R"({"spec":{"taints":[]}})", R"({"spec":{"podCIDR":"10.0.0.0/24"}})",
                            R"({"spec":{"configSource":{}}})",
                            R"({"metadata":{"ownerReferences":[]}})",
                            R"({"metadata":{"finalizers":["x"]}})",
                            R"({"metadata":{"annotations":{"$patch":"replace"}}})",
                            R"({"$patch":"replace"})", R"({"status":1})"}) {
    EXPECT_FALSE(node_status_patch(json::parse(patch), old)) << patch;
  }
  EXPECT_EQ(
      node_status_patch(json::parse(R"({"metadata":{"labels":{"node-role.kubernetes.io/master":""}}})"),
                        old)
          .reason,
      Reason::labels);
  EXPECT_EQ(node_status_patch(json::parse(R"({"spec":{"unschedulable":false}})"), old).reason,
            Reason::not_status);
}

}  // namespace
}  // namespace edgehub::authz

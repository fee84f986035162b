#include <edgehub/hub/routing_index.hpp>
#include <gtest/gtest.h>

#include <unordered_set>

namespace edgehub::hub {
namespace {

kube::Object pod(const std::string& json) { return *kube::decode_object(json); }

TEST(PodRefs, FindsEveryKindOfReference) {
  const auto refs = pod_refs(pod(R"({"kind":"Pod","apiVersion":"v1",
    "metadata":{"name":"web","namespace":"shop","uid":"u1","resourceVersion":"5"},
    "spec":{"nodeName":"edge-1","serviceAccountName":"runner",
      "volumes":[{"name":"a","configMap":{"name":"cm-vol"}},{"name":"b","secret":{"secretName":"s-vol"}},
                 {"name":"c","projected":{"sources":[{"configMap":{"name":"cm-proj"}},{"secret":{"name":"s-proj"}},{"serviceAccountToken":{"path":"t"}}]}}],
      "initContainers":[{"name":"i","envFrom":[{"configMapRef":{"name":"cm-init"}}]}],
      "containers":[{"name":"c","env":[{"name":"A","valueFrom":{"configMapKeyRef":{"name":"cm-env","key":"k"}}},
                                        {"name":"B","valueFrom":{"secretKeyRef":{"name":"s-env","key":"k"}}},
                                        {"name":"C","value":"plain"}],
                     "envFrom":[{"secretRef":{"name":"s-from"}}]}],
      "imagePullSecrets":[{"name":"s-pull"}]}})"));
  EXPECT_EQ(refs.node, "edge-1");
  EXPECT_EQ(refs.configmaps, (std::set<std::string>{"cm-vol", "cm-proj", "cm-init", "cm-env"}));
  EXPECT_EQ(refs.secrets, (std::set<std::string>{"s-vol", "s-proj", "s-env", "s-from", "s-pull"}));
  EXPECT_EQ(refs.service_accounts, (std::set<std::string>{"runner"}));
}

TEST(PodRefs, DefaultServiceAccountAndOddShapes) {
  const auto refs = pod_refs(pod(R"({"metadata":{"name":"p","namespace":"d","uid":"u"},"spec":{"volumes":"nope","containers":[1,{"env":5}]}})"));
  EXPECT_TRUE(refs.configmaps.empty());
  EXPECT_EQ(refs.service_accounts, (std::set<std::string>{"default"}));
}

PodRefs make(const std::string& node, const std::string& uid, std::set<std::string> cms,
             std::set<std::string> secrets = {}) {
  return PodRefs{"default", "pod-" + uid, uid, node, std::move(cms), std::move(secrets), {"default"}};
}

TEST(RoutingIndex, TracksReferencesPerNodeWithCounts) {
  RoutingIndex index;
  auto fresh = index.upsert_pod(make("edge-1", "u1", {"cfg"}, {"tls"}));
  EXPECT_EQ(fresh.size(), 2u);
  fresh = index.upsert_pod(make("edge-1", "u2", {"cfg"}));
  EXPECT_TRUE(fresh.empty()) << "edge-1 already has cfg";
  index.upsert_pod(make("edge-2", "u3", {"cfg"}));
  auto nodes = index.nodes_referencing(RefKind::configmap, "default", "cfg");
  EXPECT_EQ(nodes, (std::vector<std::string>{"edge-1", "edge-2"}));
  EXPECT_TRUE(index.references("edge-1", RefKind::secret, "default", "tls"));
  EXPECT_FALSE(index.references("edge-2", RefKind::secret, "default", "tls"));
  EXPECT_FALSE(index.references("edge-1", RefKind::configmap, "other", "cfg")) << "namespaced";

  index.remove_pod("edge-1", "u1");
  EXPECT_TRUE(index.references("edge-1", RefKind::configmap, "default", "cfg")) << "u2 still uses it";
  EXPECT_FALSE(index.references("edge-1", RefKind::secret, "default", "tls"));
  index.remove_pod("edge-1", "u2");
  EXPECT_EQ(index.nodes_referencing(RefKind::configmap, "default", "cfg"),
            (std::vector<std::string>{"edge-2"}));
  index.drop_node("edge-2");
  EXPECT_TRUE(index.nodes_referencing(RefKind::configmap, "default", "cfg").empty());
}

TEST(RoutingIndex, UpdatedPodSwapsReferences) {
  RoutingIndex index;
  index.upsert_pod(make("edge-1", "u1", {"a"}));
  auto fresh = index.upsert_pod(make("edge-1", "u1", {"a", "b"}));
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].name, "b");
  EXPECT_TRUE(index.upsert_pod(make("edge-1", "u1", {"a", "b"})).empty()) << "unchanged";
  index.upsert_pod(make("edge-1", "u1", {"b"}));
  EXPECT_FALSE(index.references("edge-1", RefKind::configmap, "default", "a"));
  EXPECT_TRUE(index.references("edge-1", RefKind::configmap, "default", "b"));
}

TEST(RoutingIndex, ReportsReferencesANodeNoLongerNeeds) {
  RoutingIndex index;
  index.upsert_pod(make("edge-1", "u1", {"a", "shared"}, {"tls"}));
  index.upsert_pod(make("edge-1", "u2", {"shared"}));
  std::vector<NewRef> dropped;
  index.upsert_pod(make("edge-1", "u1", {"shared"}, {"tls"}), &dropped);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].name, "a");
  dropped.clear();
  index.remove_pod("edge-1", "u1", &dropped);
  ASSERT_EQ(dropped.size(), 1u) << "\"shared\" is still used by u2";
  EXPECT_EQ(dropped[0].kind, RefKind::secret);
  dropped.clear();
  index.remove_pod("edge-1", "u2", &dropped);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].name, "shared");
}

// A resync's list is older than the watch events that crossed it: pods those events touched
// keep what the events left (present or gone), whatever the list says.
TEST(RoutingIndex, AResyncKeepsWhatWatchEventsDecided) {
  RoutingIndex idx;
  idx.upsert_pod(make("edge-1", "a", {"cm-a"}));
  idx.upsert_pod(make("edge-1", "b", {"cm-b2"}));  // updated by an event during the resync
  // "c" was deleted by an event during the resync; "d" was created by one.
  idx.upsert_pod(make("edge-1", "d", {"cm-d"}));
  const std::unordered_set<std::string> touched{"b", "c", "d"};
  idx.set_pods("edge-1",
               {make("edge-1", "a", {"cm-a"}), make("edge-1", "b", {"cm-b1"}),
                make("edge-1", "c", {"cm-c"})},
               &touched);
  EXPECT_EQ(idx.pods("edge-1"), 3u);
  EXPECT_TRUE(idx.has_pod("edge-1", "default", "pod-d"));
  EXPECT_FALSE(idx.has_pod("edge-1", "default", "pod-c"));
  EXPECT_EQ(idx.refs_of("edge-1"),
            (std::set<NewRef>{{RefKind::configmap, "default", "cm-a"},
                              {RefKind::configmap, "default", "cm-b2"},
                              {RefKind::configmap, "default", "cm-d"}}));
}

TEST(RoutingIndex, ResyncReportsOnlyNewReferences) {
  RoutingIndex index;
  index.upsert_pod(make("edge-1", "u1", {"a"}));
  const auto fresh = index.set_pods("edge-1", {make("edge-1", "u1", {"a"}), make("edge-1", "u5", {"c"})});
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].name, "c");
  EXPECT_TRUE(index.has_pod("edge-1", "default", "pod-u5"));
  EXPECT_FALSE(index.has_pod("edge-2", "default", "pod-u5"));
  EXPECT_TRUE(index.uses_service_account("edge-1", "default", "default"));
  EXPECT_FALSE(index.uses_service_account("edge-1", "default", "admin"));
  EXPECT_EQ(index.pods("edge-1"), 2u);
}

}  // namespace
}  // namespace edgehub::hub

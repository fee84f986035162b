// The object store through its C++ API: metadata, preconditions, subresources, patches,
// deletion and list options.
#include <gtest/gtest.h>

#include <edgehub/devapi/store.hpp>

namespace edgehub::devapi {
namespace {

const ResourceInfo& pods() {
  return resource_by_name("pods");
}
const ResourceInfo& nodes() {
  return resource_by_name("nodes");
}
const ResourceInfo& configmaps() {
  return resource_by_name("configmaps");
}

json pod(const std::string& name, const std::string& node = "node-x",
         json labels = json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}};
}

std::uint64_t rv_of(const json& object) {
  return std::stoull(object["metadata"]["resourceVersion"].get<std::string>());
}

template <class F>
ApiError expect_error(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "expected an ApiError";
  return ApiError(0, "", "");
}

TEST(Store, CreateFillsMetadataWithIncreasingResourceVersions) {
  Store store;
  const json a = store.create(pods(), "default", pod("a"));
  const json b = store.create(pods(), "default", pod("b"));
  EXPECT_EQ(a["metadata"]["namespace"], "default");
  EXPECT_EQ(a["metadata"]["uid"].get<std::string>().size(), 36U);
  EXPECT_NE(a["metadata"]["uid"], b["metadata"]["uid"]);
  EXPECT_TRUE(a["metadata"].contains("creationTimestamp"));
  EXPECT_EQ(a["metadata"]["generation"], 1);
  EXPECT_EQ(a["status"]["phase"], "Pending");
  EXPECT_GT(rv_of(b), rv_of(a));
  EXPECT_EQ(store.current_resource_version(), rv_of(b));
  EXPECT_EQ(store.get(pods(), "default", "a"), a);
}

TEST(Store, ResourcesByName) {
  Store store;
  store.create("leases.coordination.k8s.io", "kube-node-lease", {{"metadata", {{"name", "n"}}}});
  EXPECT_EQ(store.get("leases.coordination.k8s.io", "kube-node-lease", "n")["kind"], "Lease");
  store.patch("leases.coordination.k8s.io", "kube-node-lease", "n", PatchType::kMerge,
              {{"spec", {{"holderIdentity", "hub-0"}}}});
  EXPECT_EQ(store.list("leases.coordination.k8s.io", "")["items"][0]["spec"]["holderIdentity"],
            "hub-0");
  EXPECT_TRUE(store.remove("leases.coordination.k8s.io", "kube-node-lease", "n").gone);
  EXPECT_THROW(store.create("frobnicators", "default", json::object()), std::invalid_argument);
}

TEST(Store, DuplicateCreateIsAlreadyExists) {
  Store store;
  store.create(pods(), "default", pod("a"));
  const ApiError e = expect_error([&] { store.create(pods(), "default", pod("a")); });
  EXPECT_EQ(e.code(), 409);
  EXPECT_EQ(e.reason(), "AlreadyExists");
  EXPECT_EQ(e.details(), (json{{"name", "a"}, {"kind", "pods"}}));
}

TEST(Store, MissingNameIsInvalid) {
  Store store;
  json object = pod("x");
  object["metadata"].erase("name");
  const ApiError e = expect_error([&] { store.create(pods(), "default", object); });
  EXPECT_EQ(e.code(), 422);
  EXPECT_EQ(e.reason(), "Invalid");
  EXPECT_EQ(e.details()["causes"][0]["field"], "metadata.name");
}

TEST(Store, GenerateNameMakesAName) {
  Store store;
  json object = {{"metadata", {{"generateName", "cm-"}}}};
  const json created = store.create(configmaps(), "default", object);
  EXPECT_EQ(created["metadata"]["name"].get<std::string>().rfind("cm-", 0), 0U);
}

TEST(Store, GetMissingIsNotFound) {
  Store store;
  const ApiError e = expect_error([&] {
    store.get(resource_by_name("leases.coordination.k8s.io"), "kube-node-lease", "node-x");
  });
  EXPECT_EQ(e.code(), 404);
  EXPECT_EQ(std::string(e.what()), "leases.coordination.k8s.io \"node-x\" not found");
  EXPECT_EQ(e.details(),
            (json{{"name", "node-x"}, {"group", "coordination.k8s.io"}, {"kind", "leases"}}));
}

TEST(Store, UpdateWithStaleResourceVersionConflicts) {
  Store store;
  const json node = store.create(nodes(), "", {{"metadata", {{"name", "node-y"}}}});
  json stale = node;
  stale["metadata"]["labels"] = {{"a", "1"}};
  const json updated = store.update(nodes(), "", "node-y", stale);
  EXPECT_GT(rv_of(updated), rv_of(node));
  const ApiError e = expect_error([&] { store.update(nodes(), "", "node-y", stale); });
  EXPECT_EQ(e.code(), 409);
  EXPECT_EQ(e.reason(), "Conflict");
  EXPECT_EQ(std::string(e.what()),
            "Operation cannot be fulfilled on nodes \"node-y\": the object has been modified; "
            "please apply your changes to the latest version and try again");
  // Without a resourceVersion the update is unconditional.
  json blind = stale;
  blind["metadata"].erase("resourceVersion");
  blind["metadata"]["labels"] = {{"a", "2"}};
  EXPECT_EQ(store.update(nodes(), "", "node-y", blind)["metadata"]["labels"]["a"], "2");
}

TEST(Store, NoOpUpdateKeepsResourceVersion) {
  Store store;
  const json node = store.create(nodes(), "", {{"metadata", {{"name", "n"}}}});
  const json same = store.update(nodes(), "", "n", node);
  EXPECT_EQ(rv_of(same), rv_of(node));
}

TEST(Store, StatusSubresourceAndMainResourceIgnoreEachOther) {
  Store store;
  const json created = store.create(pods(), "default", pod("a"));
  json write = created;
  write["spec"]["nodeName"] = "elsewhere";
  write["status"]["phase"] = "Running";
  const json after_status = store.update(pods(), "default", "a", write, true);
  EXPECT_EQ(after_status["status"]["phase"], "Running");
  EXPECT_EQ(after_status["spec"]["nodeName"], "node-x");
  EXPECT_EQ(after_status["metadata"]["generation"], 1);

  write = after_status;
  write["spec"]["activeDeadlineSeconds"] = 5;
  write["status"]["phase"] = "Failed";
  const json after_spec = store.update(pods(), "default", "a", write);
  EXPECT_EQ(after_spec["status"]["phase"], "Running");
  EXPECT_EQ(after_spec["spec"]["activeDeadlineSeconds"], 5);
  EXPECT_EQ(after_spec["metadata"]["generation"], 2);
}

TEST(Store, StrategicMergeMergesNodeConditionsByType) {
  Store store;
  store.create(nodes(), "", {{"metadata", {{"name", "node-x"}}}});
  const json first = {{"status",
                       {{"conditions",
                         {{{"type", "Ready"}, {"status", "False"}},
                          {{"type", "MemoryPressure"}, {"status", "False"}}}}}}};
  store.patch(nodes(), "", "node-x", PatchType::kStrategicMerge, first, true);
  const json second = {
      {"status",
       {{"$setElementOrder/conditions", {{{"type", "MemoryPressure"}}, {{"type", "Ready"}}}},
        {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}}}};
  const json node = store.patch(nodes(), "", "node-x", PatchType::kStrategicMerge, second, true);
  const json& conditions = node["status"]["conditions"];
  ASSERT_EQ(conditions.size(), 2U);
  EXPECT_EQ(conditions[0]["type"], "MemoryPressure");
  EXPECT_EQ(conditions[1]["type"], "Ready");
  EXPECT_EQ(conditions[1]["status"], "True");
  EXPECT_EQ(conditions[1]["reason"], "KubeletReady");
  EXPECT_FALSE(node.contains("$setElementOrder/conditions"));
}

TEST(Store, PatchOnMainResourceIgnoresStatus) {
  Store store;
  store.create(pods(), "default", pod("a"));
  const json patched =
      store.patch(pods(), "default", "a", PatchType::kMerge,
                  {{"metadata", {{"labels", {{"x", "1"}}}}}, {"status", {{"phase", "Running"}}}});
  EXPECT_EQ(patched["metadata"]["labels"]["x"], "1");
  EXPECT_EQ(patched["status"]["phase"], "Pending");
}

TEST(Store, PatchWithStaleResourceVersionConflicts) {
  Store store;
  const json created = store.create(configmaps(), "default", {{"metadata", {{"name", "cm"}}}});
  store.patch(configmaps(), "default", "cm", PatchType::kMerge, {{"data", {{"a", "1"}}}});
  const ApiError e = expect_error([&] {
    store.patch(configmaps(), "default", "cm", PatchType::kMerge,
                {{"metadata", {{"resourceVersion", created["metadata"]["resourceVersion"]}}},
                 {"data", {{"a", "2"}}}});
  });
  EXPECT_EQ(e.code(), 409);
}

TEST(Store, JsonPatch) {
  Store store;
  store.create(configmaps(), "default", {{"metadata", {{"name", "cm"}}}, {"data", {{"a", "1"}}}});
  const json patched =
      store.patch(configmaps(), "default", "cm", PatchType::kJson,
                  json::array({{{"op", "replace"}, {"path", "/data/a"}, {"value", "2"}},
                               {{"op", "add"}, {"path", "/data/b"}, {"value", "3"}}}));
  EXPECT_EQ(patched["data"], (json{{"a", "2"}, {"b", "3"}}));
  const ApiError e = expect_error([&] {
    store.patch(configmaps(), "default", "cm", PatchType::kJson,
                json::array({{{"op", "test"}, {"path", "/data/a"}, {"value", "9"}}}));
  });
  EXPECT_EQ(e.code(), 422);
}

TEST(Store, GracefulPodDeleteMarksThenForceDeleteRemoves) {
  Store store;
  store.create(pods(), "default", pod("a"));
  const DeleteResult graceful = store.remove(pods(), "default", "a");
  EXPECT_FALSE(graceful.gone);
  EXPECT_TRUE(graceful.body["metadata"].contains("deletionTimestamp"));
  EXPECT_EQ(graceful.body["metadata"]["deletionGracePeriodSeconds"], 30);
  EXPECT_TRUE(store.get(pods(), "default", "a")["metadata"].contains("deletionTimestamp"));

  DeleteOptions force;
  force.grace_period_seconds = 0;
  const DeleteResult forced = store.remove(pods(), "default", "a", force);
  EXPECT_TRUE(forced.gone);
  EXPECT_EQ(expect_error([&] { store.get(pods(), "default", "a"); }).code(), 404);
}

TEST(Store, UnscheduledPodIsDeletedAtOnce) {
  Store store;
  store.create(pods(), "default", pod("a", ""));
  EXPECT_TRUE(store.remove(pods(), "default", "a").gone);
}

TEST(Store, DeleteOfOtherKindsReturnsSuccessStatus) {
  Store store;
  store.create(configmaps(), "default", {{"metadata", {{"name", "cm"}}}});
  const DeleteResult result = store.remove(configmaps(), "default", "cm");
  EXPECT_TRUE(result.gone);
  EXPECT_EQ(result.body["kind"], "Status");
  EXPECT_EQ(result.body["status"], "Success");
  EXPECT_EQ(result.body["details"]["name"], "cm");
}

TEST(Store, FinalizersHoldDeletionUntilRemoved) {
  Store store;
  store.create(configmaps(), "default",
               {{"metadata", {{"name", "cm"}, {"finalizers", {"example.com/hold"}}}}});
  EXPECT_FALSE(store.remove(configmaps(), "default", "cm").gone);
  json cm = store.get(configmaps(), "default", "cm");
  ASSERT_TRUE(cm["metadata"].contains("deletionTimestamp"));
  cm["metadata"]["finalizers"] = json::array();
  store.update(configmaps(), "default", "cm", cm);
  EXPECT_EQ(expect_error([&] { store.get(configmaps(), "default", "cm"); }).code(), 404);
}

TEST(Store, DeletePreconditionMismatchConflicts) {
  Store store;
  store.create(configmaps(), "default", {{"metadata", {{"name", "cm"}}}});
  DeleteOptions options;
  options.precondition_uid = "not-the-uid";
  EXPECT_EQ(expect_error([&] { store.remove(configmaps(), "default", "cm", options); }).code(),
            409);
}

class StoreList : public ::testing::Test {
 protected:
  void SetUp() override {
    store.create(pods(), "default", pod("a", "node-x", {{"app", "web"}, {"tier", "front"}}));
    store.create(pods(), "default", pod("b", "node-y", {{"app", "web"}}));
    store.create(pods(), "other", pod("c", "node-x", {{"app", "db"}, {"version", "3"}}));
    store.create(pods(), "other", pod("d", "node-z"));
  }
  std::vector<std::string> names(const std::string& ns, ListOptions options) {
    std::vector<std::string> out;
    const json list = store.list(pods(), ns, options);
    for (const auto& item : list["items"]) {
      out.push_back(item["metadata"]["name"].get<std::string>());
    }
    return out;
  }
  std::vector<std::string> by_labels(const std::string& selector) {
    ListOptions options;
    options.label_selector = selector;
    return names("", options);
  }
  std::vector<std::string> by_fields(const std::string& selector) {
    ListOptions options;
    options.field_selector = selector;
    return names("", options);
  }
  using V = std::vector<std::string>;
  Store store;
};

TEST_F(StoreList, ListShapeAndNamespaces) {
  const json list = store.list(pods(), "default");
  EXPECT_EQ(list["kind"], "PodList");
  EXPECT_EQ(list["apiVersion"], "v1");
  EXPECT_EQ(list["metadata"]["resourceVersion"], std::to_string(store.current_resource_version()));
  EXPECT_FALSE(list["items"][0].contains("kind"));
  EXPECT_EQ(names("default", {}), (V{"a", "b"}));
  EXPECT_EQ(names("", {}), (V{"a", "b", "c", "d"}));
}

TEST_F(StoreList, LabelSelectors) {
  EXPECT_EQ(by_labels("app=web"), (V{"a", "b"}));
  EXPECT_EQ(by_labels("app==web,tier=front"), (V{"a"}));
  EXPECT_EQ(by_labels("app!=web"), (V{"c", "d"}));
  EXPECT_EQ(by_labels("app in (db, web)"), (V{"a", "b", "c"}));
  EXPECT_EQ(by_labels("app notin (web)"), (V{"c", "d"}));
  EXPECT_EQ(by_labels("tier"), (V{"a"}));
  EXPECT_EQ(by_labels("!app"), (V{"d"}));
  EXPECT_EQ(by_labels("version>2"), (V{"c"}));
  EXPECT_EQ(by_labels(""), (V{"a", "b", "c", "d"}));
}

TEST_F(StoreList, BadLabelSelectorIsBadRequest) {
  const ApiError e = expect_error([&] { by_labels("a in (("); });
  EXPECT_EQ(e.code(), 400);
  EXPECT_EQ(std::string(e.what()),
            "unable to parse requirement: found '(', expected: ',', ')' or identifier");
}

TEST_F(StoreList, FieldSelectors) {
  EXPECT_EQ(by_fields("spec.nodeName=node-x"), (V{"a", "c"}));
  EXPECT_EQ(by_fields("spec.nodeName!=node-x"), (V{"b", "d"}));
  EXPECT_EQ(by_fields("metadata.namespace=other,spec.nodeName==node-x"), (V{"c"}));
  EXPECT_EQ(by_fields("metadata.name=b"), (V{"b"}));
  EXPECT_EQ(by_fields("status.phase=Pending"), (V{"a", "b", "c", "d"}));
  const ApiError e = expect_error([&] { by_fields("spec.foo=bar"); });
  EXPECT_EQ(e.code(), 400);
  EXPECT_EQ(std::string(e.what()), "field label not supported: spec.foo");
}

TEST_F(StoreList, PagingWithLimitAndContinue) {
  ListOptions options;
  options.limit = 3;
  const json first = store.list(pods(), "", options);
  ASSERT_EQ(first["items"].size(), 3U);
  EXPECT_EQ(first["metadata"]["remainingItemCount"], 1);
  options.continue_token = first["metadata"]["continue"].get<std::string>();
  const json second = store.list(pods(), "", options);
  ASSERT_EQ(second["items"].size(), 1U);
  EXPECT_EQ(second["items"][0]["metadata"]["name"], "d");
  EXPECT_FALSE(second["metadata"].contains("continue"));
  EXPECT_EQ(second["metadata"]["resourceVersion"], first["metadata"]["resourceVersion"]);

  options.continue_token = "notavalidtoken";
  const ApiError e = expect_error([&] { store.list(pods(), "", options); });
  EXPECT_EQ(e.code(), 400);
  EXPECT_EQ(std::string(e.what()).rfind("invalid continue token", 0), 0U);
}

TEST_F(StoreList, ResourceVersionMatchRules) {
  ListOptions options;
  options.resource_version_match = "Exact";
  ApiError e = expect_error([&] { store.list(pods(), "", options); });
  EXPECT_EQ(e.code(), 422);
  EXPECT_EQ(e.details()["causes"][0]["field"], "resourceVersionMatch");

  options.resource_version = "2";
  e = expect_error([&] { store.list(pods(), "", options); });
  EXPECT_EQ(e.code(), 410);
  EXPECT_EQ(e.reason(), "Expired");

  options.resource_version = std::to_string(store.current_resource_version());
  EXPECT_EQ(store.list(pods(), "", options)["items"].size(), 4U);
  options.resource_version_match = "NotOlderThan";
  options.resource_version = "0";
  EXPECT_EQ(store.list(pods(), "", options)["items"].size(), 4U);
}

TEST(Store, DeletingANamespaceDeletesItsObjects) {
  Store store;
  store.create(resource_by_name("namespaces"), "", {{"metadata", {{"name", "team"}}}});
  store.create(configmaps(), "team", {{"metadata", {{"name", "cm"}}}});
  store.create(configmaps(), "default", {{"metadata", {{"name", "cm"}}}});
  store.remove(resource_by_name("namespaces"), "", "team");
  EXPECT_EQ(store.list(configmaps(), "team")["items"].size(), 0U);
  EXPECT_EQ(store.list(configmaps(), "default")["items"].size(), 1U);
}

TEST(StorePersistence, RestoreKeepsObjectsAndContinuesResourceVersions) {
  Store first;
  first.create(pods(), "default", pod("web"));
  const auto cm = first.create(configmaps(), "default", {{"metadata", {{"name", "cfg"}}}});
  first.create(nodes(), "", {{"metadata", {{"name", "edge-1"}}}});
  const auto saved_rv = first.current_resource_version();
  const json snapshot = first.snapshot();

  Store second;
  second.restore(snapshot);
  EXPECT_EQ(second.current_resource_version(), saved_rv);
  const auto got = second.get(configmaps(), "default", "cfg");
  EXPECT_EQ(got["metadata"]["uid"], cm["metadata"]["uid"]);
  EXPECT_EQ(got["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"]);
  EXPECT_EQ(second.list(pods(), "default")["items"].size(), 1u);
  EXPECT_EQ(second.list(nodes(), "")["items"].size(), 1u);
  const auto next = second.create(configmaps(), "default", {{"metadata", {{"name", "more"}}}});
  EXPECT_GT(rv_of(next), saved_rv);
}

TEST(StorePersistence, SaveAndLoadThroughAFile) {
  const std::string path = ::testing::TempDir() + "devapi-store-persistence.json";
  Store first;
  first.create(pods(), "default", pod("web"));
  first.save(path);
  Store second;
  second.load(path);
  EXPECT_EQ(second.current_resource_version(), first.current_resource_version());
  EXPECT_EQ(second.get(pods(), "default", "web")["metadata"]["uid"],
            first.get(pods(), "default", "web")["metadata"]["uid"]);
}

TEST(StorePersistence, BadSnapshotsAreRefusedWithTheReason) {
  Store store;
  EXPECT_THROW(store.restore(json::array()), std::invalid_argument);
  EXPECT_THROW(store.restore({{"resourceVersion", "5"}, {"objects", {{{"resource", "pods"}}}}}),
               std::invalid_argument);
  EXPECT_THROW(store.load(::testing::TempDir() + "no-such-devapi-state.json"), std::runtime_error);
}

}  // namespace
}  // namespace edgehub::devapi

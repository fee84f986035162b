#include <gtest/gtest.h>

#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/patch.hpp>

namespace edgehub::devapi {
namespace {

using nlohmann::json;

TEST(StrategicMerge, MergesContainersByNameAndKeepsOthers) {
  const json pod = {
      {"spec",
       {{"containers", {{{"name", "a"}, {"image", "a:1"}}, {{"name", "b"}, {"image", "b:1"}}}}}}};
  const json patch = {{"spec", {{"containers", {{{"name", "b"}, {"image", "b:2"}}}}}}};
  const json out = apply_strategic_merge_patch(pod, patch);
  EXPECT_EQ(out["spec"]["containers"],
            (json{{{"name", "a"}, {"image", "a:1"}}, {{"name", "b"}, {"image", "b:2"}}}));
}

TEST(StrategicMerge, PatchDeleteDirectiveRemovesElement) {
  const json pod = {{"spec", {{"containers", {{{"name", "a"}}, {{"name", "b"}}}}}}};
  const json patch = {{"spec", {{"containers", {{{"name", "a"}, {"$patch", "delete"}}}}}}};
  EXPECT_EQ(apply_strategic_merge_patch(pod, patch)["spec"]["containers"], (json{{{"name", "b"}}}));
}

TEST(StrategicMerge, ListsWithoutMergeKeyAreReplacedAndNullDeletes) {
  const json obj = {{"spec", {{"tolerations", {{{"key", "a"}}}}, {"x", 1}}}};
  const json patch = {{"spec", {{"tolerations", {{{"key", "b"}}}}, {"x", nullptr}}}};
  EXPECT_EQ(apply_strategic_merge_patch(obj, patch),
            (json{{"spec", {{"tolerations", {{{"key", "b"}}}}}}}));
}

TEST(StrategicMerge, FinalizersMergeAsASetAndCanBeDeleted) {
  const json obj = {{"metadata", {{"finalizers", {"a", "b"}}}}};
  EXPECT_EQ(apply_strategic_merge_patch(
                obj, {{"metadata", {{"finalizers", {"c", "a"}}}}})["metadata"]["finalizers"],
            (json{"a", "b", "c"}));
  EXPECT_EQ(
      apply_strategic_merge_patch(
          obj, {{"metadata",
                 {{"$deleteFromPrimitiveList/finalizers", {"a"}}}}})["metadata"]["finalizers"],
      (json{"b"}));
}

TEST(StrategicMerge, SetElementOrderReordersConditions) {
  const json obj = {{"status", {{"conditions", {{{"type", "A"}}, {{"type", "B"}}}}}}};
  const json patch = {{"status",
                       {{"$setElementOrder/conditions", {{{"type", "B"}}, {{"type", "A"}}}},
                        {"conditions", {{{"type", "A"}, {"status", "True"}}}}}}};
  EXPECT_EQ(
      apply_strategic_merge_patch(obj, patch),
      (json{{"status", {{"conditions", {{{"type", "B"}}, {{"type", "A"}, {"status", "True"}}}}}}}));
}

TEST(MergePatch, Rfc7386) {
  EXPECT_EQ(apply_merge_patch({{"a", {{"b", 1}, {"c", 2}}}, {"l", {1, 2}}},
                              {{"a", {{"b", nullptr}}}, {"l", {3}}}),
            (json{{"a", {{"c", 2}}}, {"l", {3}}}));
}

TEST(JsonPatch, FailedTestIsInvalid) {
  try {
    apply_json_patch({{"a", 1}}, json::array({{{"op", "test"}, {"path", "/a"}, {"value", 2}}}));
    FAIL();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 422);
  }
}

}  // namespace
}  // namespace edgehub::devapi

#include <edgehub/hub/membership.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace edgehub::hub {
namespace {

TEST(NodeSyncRecord, RoundTripsThroughTheApiShape) {
  NodeSyncRecord r;
  r.node = "edge-1";
  r.owner = "edgehub-7f9c-abcde";
  r.owner_since = "2026-11-27T05:00:00Z";
  r.resource_version = "42";
  r.objects["u1"] = {ObjectKind::pod, "default", "web", "u1", 17};
  r.objects["u2"] = {ObjectKind::configmap, "default", "cfg", "u2", 0};
  r.objects["u3"] = {ObjectKind::device, "factory", "sensor", "u3", 5};
  const auto doc = nlohmann::json::parse(r.to_json());
  EXPECT_EQ(doc["apiVersion"], "edgehub.io/v1alpha1");
  EXPECT_EQ(doc["kind"], "NodeSync");
  EXPECT_EQ(doc["metadata"]["name"], "edge-1");
  EXPECT_EQ(doc["metadata"]["resourceVersion"], "42") << "every write is a precondition";
  EXPECT_EQ(doc["status"]["owner"], "edgehub-7f9c-abcde");
  ASSERT_EQ(doc["status"]["objects"].size(), 3u);
  EXPECT_EQ(doc["status"]["objects"][0]["kind"], "Pod");
  EXPECT_EQ(doc["status"]["objects"][0]["ackedResourceVersion"], "17");
  EXPECT_EQ(doc["status"]["objects"][1]["ackedResourceVersion"], "") << "sent, not ACKed yet";
  const auto back = NodeSyncRecord::from_json(r.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->objects, r.objects);
  EXPECT_EQ(back->owner, r.owner);
  EXPECT_EQ(back->owner_since, r.owner_since);
}

TEST(NodeSyncRecord, ToleratesWhatItDoesNotKnow) {
  EXPECT_FALSE(NodeSyncRecord::from_json("not json"));
  const auto empty = NodeSyncRecord::from_json(R"({"metadata":{"name":"edge-1","resourceVersion":"3"}})");
  ASSERT_TRUE(empty) << "a record created but never claimed";
  EXPECT_TRUE(empty->owner.empty());
  const auto odd = NodeSyncRecord::from_json(
      R"({"metadata":{"name":"e"},"status":{"owner":"r","objects":[{"kind":"Widget","uid":"x"},{"kind":"Pod"},7,{"kind":"Secret","uid":"s","name":"tls","namespace":"d","ackedResourceVersion":"junk"}]}})");
  ASSERT_TRUE(odd);
  ASSERT_EQ(odd->objects.size(), 1u) << "unknown kinds and entries without a uid are skipped";
  EXPECT_EQ(odd->objects.at("s").acked_version, 0u) << "an unreadable version means: re-send";
}

TEST(Rebalance, ShedsDownToTheAverageNeverBelowAndAFewAtATime) {
  EXPECT_EQ(rebalance_surplus(100, {100}, 0.1, 20), 0u) << "alone";
  EXPECT_EQ(rebalance_surplus(100, {100, 100, 100}, 0.1, 20), 0u) << "balanced";
  EXPECT_EQ(rebalance_surplus(105, {105, 100, 95}, 0.1, 20), 0u) << "within tolerance";
  EXPECT_EQ(rebalance_surplus(300, {300, 300, 300, 0}, 0.1, 20), 20u) << "capped per round";
  EXPECT_EQ(rebalance_surplus(300, {300, 300, 300, 0}, 0.1, 1000), 75u) << "down to 225";
  EXPECT_EQ(rebalance_surplus(7, {7, 0}, 0.1, 100), 3u) << "ceil(3.5) = 4 stay";
  EXPECT_EQ(rebalance_surplus(0, {0, 0}, 0.1, 100), 0u);
}

TEST(Rebalance, LeaseTimesAreMicroTimeAndParse) {
  const auto now = micro_time_now();
  ASSERT_EQ(now.size(), 27u) << now;  // 2026-11-27T05:00:00.123456Z
  EXPECT_EQ(now.back(), 'Z');
  const auto parsed = parse_rfc3339(now);
  ASSERT_TRUE(parsed);
  EXPECT_NEAR(static_cast<double>(*parsed), static_cast<double>(std::time(nullptr)), 5);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:01:00Z"), 60);
  EXPECT_FALSE(parse_rfc3339("yesterday"));
}

}  // namespace
}  // namespace edgehub::hub

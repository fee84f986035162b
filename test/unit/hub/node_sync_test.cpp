#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/membership.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <functional>

#include "api_client.hpp"

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
  EXPECT_EQ(rebalance_surplus(300, {300, 300, 300, 0}, 0.1, 20, 1), 0u)
      << "not while API requests wait or edges connect (a fleet still connecting)";
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


// admit(): what goes to the session, and when — against the embedded API server.
class NodeSyncAdmit : public ::testing::Test {
 protected:
  static constexpr std::chrono::milliseconds kInterval{300};  // coalesced ACK writes

  void SetUp() override {
    api_.start();
    client_ = test::api_client(api_, io_, "node-sync");
    sync_ = std::make_unique<NodeSync>(
        client_, metrics_, NodeSyncOptions{.replica = "hub-a", .flush_interval = kInterval},
        [this](const std::string& node, Change c) { delivered_.emplace_back(node, std::move(c)); },
        [this](const std::string&, std::uint64_t, bool ok, const std::string&) { claimed_ = ok; },
        [](const std::string&, const std::string&) {});
    sync_->claim("edge-1", 1);
    run_until([&] { return claimed_; });
    ASSERT_TRUE(claimed_);
  }

  void TearDown() override {
    sync_->stop();
    io_.poll();
  }

  void run_until(const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
  }

  static Change pod(std::string uid, std::uint64_t rv, std::string op = "update") {
    return Change{.kind = ObjectKind::pod, .ns = "default", .name = "p-" + uid, .uid = uid,
                  .resource_version = rv, .operation = std::move(op),
                  .object = std::make_shared<const std::string>("{}")};
  }

  double counter(const std::string& name) {
    const auto text = metrics_.expose();
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
  }

  devapi::Server api_{devapi::ServerOptions{}};
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  metrics::Registry metrics_;
  std::unique_ptr<NodeSync> sync_;
  bool claimed_ = false;
  std::vector<std::pair<std::string, Change>> delivered_;
};

TEST_F(NodeSyncAdmit, AFirstVersionWaitsForTheRecordAndAnOlderListVersionNeverReplacesIt) {
  sync_->admit("edge-1", pod("a", 20, "insert"));  // watch event
  sync_->admit("edge-1", pod("a", 12));            // a resync's list, answered earlier
  EXPECT_TRUE(delivered_.empty()) << "sent before the record holds the object";
  run_until([&] { return !delivered_.empty(); });
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].second.resource_version, 20u);
  ASSERT_NE(sync_->record("edge-1"), nullptr);
  EXPECT_TRUE(sync_->record("edge-1")->objects.contains("a"));
}

TEST_F(NodeSyncAdmit, ADeleteWaitingForTheRecordWins) {
  sync_->admit("edge-1", pod("b", 20, "insert"));
  sync_->admit("edge-1", pod("b", 21, "delete"));
  sync_->admit("edge-1", pod("b", 20));  // a list that crossed the delete
  run_until([&] { return !delivered_.empty(); });
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].second.operation, "delete");
}

TEST_F(NodeSyncAdmit, AVersionTheEdgeAckedIsNotSentAgain) {
  sync_->admit("edge-1", pod("c", 30, "insert"));
  run_until([&] { return !delivered_.empty(); });
  ASSERT_EQ(delivered_.size(), 1u);
  sync_->acked("edge-1", delivered_[0].second);
  delivered_.clear();
  // The same version again (a configmap read for another pod, a list): nothing to send, and
  // nothing left waiting for an ACK that would never come.
  sync_->admit("edge-1", pod("c", 30));
  sync_->admit("edge-1", pod("c", 29));
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(counter("edgehub_nodesync_already_acked_total"), 2);
  // A newer version and a delete go at once (the record holds the object).
  sync_->admit("edge-1", pod("c", 31));
  sync_->admit("edge-1", pod("c", 32, "delete"));
  ASSERT_EQ(delivered_.size(), 2u);
  EXPECT_EQ(delivered_[0].second.resource_version, 31u);
  EXPECT_EQ(delivered_[1].second.operation, "delete");
}

TEST_F(NodeSyncAdmit, AcksAreCoalescedIntoAtMostOneWritePerNodePerInterval) {
  sync_->start();  // the tick that writes dirty records
  claimed_ = false;
  sync_->claim("edge-2", 2);
  run_until([&] { return claimed_; });
  ASSERT_TRUE(claimed_);
  sync_->admit("edge-1", pod("a", 10, "insert"));
  sync_->admit("edge-2", pod("b", 10, "insert"));
  run_until([&] { return delivered_.size() == 2; });
  ASSERT_EQ(delivered_.size(), 2u) << "each first version after its own record write";
  const std::string ok = "edgehub_nodesync_writes_total{result=\"ok\"}";
  const double writes_before = counter(ok);
  const auto start = std::chrono::steady_clock::now();
  // A stream of updates, each ACKed at once: every ACK dirties its node's record.
  for (std::uint64_t v = 11; v <= 40; ++v) {
    for (const char* node : {"edge-1", "edge-2"}) {
      const auto uid = std::string(node) == "edge-1" ? "a" : "b";
      sync_->admit(node, pod(uid, v));
      sync_->acked(node, delivered_.back().second);
    }
    io_.restart();
    io_.run_for(std::chrono::milliseconds(25));
  }
  auto acked_in_api = [&](const char* node, const char* uid) {
    const auto doc = api_.store().get("nodesyncs.edgehub.io", "", node);
    for (const auto& o : doc["status"]["objects"]) {
      if (o["uid"] == uid) return o["ackedResourceVersion"].get<std::string>();
    }
    return std::string("missing");
  };
  run_until(
      [&] { return acked_in_api("edge-1", "a") == "40" && acked_in_api("edge-2", "b") == "40"; });
  EXPECT_EQ(acked_in_api("edge-1", "a"), "40") << "the last ACK reaches the record";
  EXPECT_EQ(acked_in_api("edge-2", "b"), "40");
  const double periods =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start) / kInterval;
  const double writes = counter(ok) - writes_before;
  EXPECT_GE(writes, 2) << "one write per node at least";
  EXPECT_LE(writes, 2 * (periods + 1)) << "60 ACKs coalesced per node and interval";
}

TEST_F(NodeSyncAdmit, ClaimsBeyondTheLimitWaitTheirTurnAndAllComplete) {
  std::vector<std::string> claimed;
  metrics::Registry metrics;
  NodeSync limited(
      client_, metrics,
      NodeSyncOptions{.replica = "hub-b", .max_concurrent_claims = 2},
      [](const std::string&, Change) {},
      [&](const std::string& node, std::uint64_t, bool ok, const std::string&) {
        if (ok) claimed.push_back(node);
      },
      [](const std::string&, const std::string&) {});
  for (int i = 0; i < 7; ++i) limited.claim("limited-" + std::to_string(i), 10 + i);
  limited.claim("limited-3", 20);  // a reconnect while still queued: claimed once, for it
  run_until([&] { return claimed.size() == 7; });
  EXPECT_EQ(claimed.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    const auto name = "limited-" + std::to_string(i);
    EXPECT_EQ(std::count(claimed.begin(), claimed.end(), name), 1) << name;
    const auto doc = api_.store().get("nodesyncs.edgehub.io", "", name);
    EXPECT_EQ(doc["status"]["owner"], "hub-b") << name;
  }
  limited.stop();
  io_.poll();
}

}  // namespace
}  // namespace edgehub::hub

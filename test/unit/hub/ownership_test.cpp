// Ownership of a node across its sessions on one replica: the claim of a new session, the
// release of the old one, NodeSync write completions, the watch event of our own writes and
// the Registry's confirmation, in every order — against the embedded API server.
#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>

#include "api_client.hpp"

namespace edgehub::hub {
namespace {

struct Outcome {
  std::string node;
  std::uint64_t session;
  bool ok;
};

class Ownership : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.start();
    client_ = test::api_client(api_, io_, "ownership");
    sync_ = std::make_unique<NodeSync>(
        client_, metrics_, NodeSyncOptions{.replica = "hub-a", .flush_interval = kInterval},
        [this](const std::string& node, Change c) { delivered_.emplace_back(node, std::move(c)); },
        [this](const std::string& node, std::uint64_t id, bool ok, const std::string&) {
          outcomes_.push_back({node, id, ok});
        },
        [this](const std::string& node, const std::string&) { lost_.push_back(node); });
    sync_->start();
    run_until([&] { return sync_->ready(); });
  }

  void TearDown() override {
    sync_->stop();
    io_.poll();
  }

  devapi::ServerOptions api_options() {
    devapi::ServerOptions options;
    options.response_delay = [this](std::string_view method, std::string_view target) {
      const bool write = method == "PUT" && target.find("/nodesyncs/") != std::string_view::npos;
      return std::chrono::milliseconds(write ? write_delay_ms_.load() : 0);
    };
    options.inject_conflict = [this](std::string_view method, std::string_view target) {
      const bool write = method == "PUT" && target.find("/nodesyncs/") != std::string_view::npos;
      return write && conflicts_left_.fetch_sub(1) > 0;
    };
    return options;
  }

  void run_until(const std::function<bool()>& done, int rounds = 500) {
    for (int i = 0; i < rounds && !done(); ++i) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
  }
  void run_for(std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  }

  bool claimed(std::uint64_t session) const {
    return std::any_of(outcomes_.begin(), outcomes_.end(),
                       [&](const Outcome& o) { return o.session == session && o.ok; });
  }
  // Claims the node for `session` and waits for the claim to be written.
  void own(const std::string& node, std::uint64_t session) {
    sync_->claim(node, session);
    run_until([&] { return claimed(session); });
    ASSERT_TRUE(claimed(session));
  }
  static Change pod(std::string uid, std::uint64_t rv, std::string op = "update") {
    return Change{.kind = ObjectKind::pod, .ns = "default", .name = "p-" + uid, .uid = uid,
                  .resource_version = rv, .operation = std::move(op),
                  .object = std::make_shared<const std::string>("{}")};
  }
  // The node's last outcome is an owning claim for `session`, and NodeSync owns the node for
  // it: changes pass.
  void expect_owned_for(const std::string& node, std::uint64_t session) {
    ASSERT_FALSE(outcomes_.empty());
    EXPECT_EQ(outcomes_.back().session, session) << "the claim's outcome names its session";
    EXPECT_TRUE(outcomes_.back().ok);
    EXPECT_EQ(sync_->owner_session(node), session);
    ASSERT_NE(sync_->record(node), nullptr) << "the record is held for the new session";
    delivered_.clear();
    sync_->admit(node, pod("probe-" + std::to_string(session), 900 + session, "insert"));
    run_until([&] { return !delivered_.empty(); });
    EXPECT_EQ(delivered_.size(), 1u) << "a change for the owned node is delivered";
    const auto doc = api_.store().get("nodesyncs.edgehub.io", "", node);
    EXPECT_EQ(doc["status"]["owner"], "hub-a");
  }

  static constexpr std::chrono::milliseconds kInterval{200};
  std::atomic<int> write_delay_ms_{0};
  std::atomic<int> conflicts_left_{0};
  devapi::Server api_{api_options()};
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  metrics::Registry metrics_;
  std::unique_ptr<NodeSync> sync_;
  std::vector<Outcome> outcomes_;
  std::vector<std::string> lost_;
  std::vector<std::pair<std::string, Change>> delivered_;
};

// Shed, then back at once: the old session's release reaches NodeSync before the new claim,
// with nothing left to write (the record is forgotten and claimed afresh).
TEST_F(Ownership, ReleaseThenClaimWithNothingToWrite) {
  own("edge-1", 1);
  sync_->release("edge-1", 1);
  sync_->claim("edge-1", 2);
  run_until([&] { return claimed(2); });
  expect_owned_for("edge-1", 2);
}

// The release's flush write is still on its way when the new session's claim arrives.
TEST_F(Ownership, ClaimWhileTheReleaseWriteIsInFlight) {
  own("edge-1", 1);
  sync_->admit("edge-1", pod("a", 10, "insert"));
  run_until([&] { return !delivered_.empty(); });
  sync_->acked("edge-1", delivered_.back().second);  // dirty: the release must write it
  write_delay_ms_ = 300;
  sync_->release("edge-1", 1);
  run_for(std::chrono::milliseconds(50));  // the flush write has left
  sync_->claim("edge-1", 2);
  run_until([&] { return claimed(2); });
  write_delay_ms_ = 0;
  expect_owned_for("edge-1", 2);
  EXPECT_TRUE(lost_.empty()) << "our own writes never take the node away";
}

// The old session's claim is still being written when it closes and the node comes back.
TEST_F(Ownership, ClaimWhileTheOldSessionsClaimIsInFlight) {
  write_delay_ms_ = 300;
  sync_->claim("edge-1", 1);
  run_for(std::chrono::milliseconds(50));
  sync_->release("edge-1", 1);
  sync_->claim("edge-1", 2);
  run_until([&] { return claimed(2); });
  write_delay_ms_ = 0;
  EXPECT_FALSE(claimed(1)) << "the superseded claim is not reported as owning";
  expect_owned_for("edge-1", 2);
}

// The new session's claim reaches NodeSync before the old session's release (the close was
// reported late): the release must not forget the node under the new session.
TEST_F(Ownership, ALateReleaseOfTheOldSessionLeavesTheNewOneOwning) {
  own("edge-1", 1);
  sync_->claim("edge-1", 2);
  sync_->release("edge-1", 1);
  run_until([&] { return claimed(2); });
  run_for(std::chrono::milliseconds(3 * kInterval.count()));
  expect_owned_for("edge-1", 2);
}

// Claims posted from two sessions' threads arrive in the other order: the newer session keeps
// the node, whatever arrived last.
TEST_F(Ownership, AStaleClaimArrivingLastDoesNotTakeTheNodeFromTheNewerSession) {
  own("edge-1", 1);
  sync_->claim("edge-1", 3);
  sync_->claim("edge-1", 2);  // posted before 3's, delivered after it
  run_until([&] { return claimed(3); });
  run_for(std::chrono::milliseconds(100));
  expect_owned_for("edge-1", 3);
  EXPECT_FALSE(claimed(2));
}

// A claim by the replica that is already the recorded owner still writes and confirms.
TEST_F(Ownership, AClaimByTheRecordedOwnerStillWritesAndConfirms) {
  own("edge-1", 1);
  const auto before = api_.store().get("nodesyncs.edgehub.io", "", "edge-1");
  sync_->claim("edge-1", 2);
  run_until([&] { return claimed(2); });
  const auto after = api_.store().get("nodesyncs.edgehub.io", "", "edge-1");
  // The write may change nothing (same owner, same second): then, as on kube-apiserver, the
  // resourceVersion stays and no watch event comes; the claim is confirmed all the same.
  EXPECT_EQ(after["status"]["owner"], "hub-a");
  EXPECT_GE(std::stoull(after["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(before["metadata"]["resourceVersion"].get<std::string>()));
  expect_owned_for("edge-1", 2);
}

// Conflicts on the claim (a concurrent writer, as the real API server answers 409) are
// re-read and retried; the watch events of our own writes never count as another's claim.
TEST_F(Ownership, ConflictsOnTheClaimAreRetried) {
  own("edge-1", 1);
  conflicts_left_ = 3;
  sync_->release("edge-1", 1);
  sync_->claim("edge-1", 2);
  run_until([&] { return claimed(2); });
  expect_owned_for("edge-1", 2);
  EXPECT_TRUE(lost_.empty());
}

// A claim repeated for the session it already owns the node for (the Hub's not-owning
// watchdog) confirms again at once, without a new write.
TEST_F(Ownership, ARepeatedClaimForTheOwningSessionConfirmsAgain) {
  own("edge-1", 1);
  const auto before = api_.store().get("nodesyncs.edgehub.io", "", "edge-1");
  outcomes_.clear();
  sync_->claim("edge-1", 1);
  run_until([&] { return claimed(1); });
  EXPECT_TRUE(claimed(1));
  const auto after = api_.store().get("nodesyncs.edgehub.io", "", "edge-1");
  EXPECT_EQ(before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"]);
}

}  // namespace
}  // namespace edgehub::hub

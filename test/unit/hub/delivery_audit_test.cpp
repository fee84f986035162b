// DeliveryAudit, the safety net: a pod bound to an owned node that its edge has not ACKed
// within the grace period is repaired and counted; a delivered one never is; a session that
// stays not owning is reported and claimed again. Against the embedded API server.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/delivery_audit.hpp>
#include <edgehub/hub/downstream.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <thread>

#include "api_client.hpp"

namespace edgehub::hub {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class QuietSession : public Session {
 public:
  QuietSession(std::string node, std::uint64_t id, boost::asio::io_context& io)
      : Session(std::move(node), "127.0.0.1:1", id), io_(io) {}
  boost::asio::any_io_executor executor() override { return io_.get_executor(); }
  void send(std::string, SteadyClock::time_point) override {}
  void close(CloseReason) override {}
  bool closed() const override { return false; }
  void enqueue(Change) override {}
  void request_done() override {}

 private:
  boost::asio::io_context& io_;
};

class Audit : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.start();
    client_ = test::api_client(api_, io_, "delivery-audit");
    sync_ = std::make_unique<NodeSync>(
        client_, metrics_, NodeSyncOptions{.replica = "hub-a"},
        [](const std::string&, Change) {},
        [this](const std::string& node, std::uint64_t id, bool ok, const std::string&) {
          if (ok) registry_.confirm(node, id);
        },
        [](const std::string&, const std::string&) {});
    audit_ = std::make_unique<DeliveryAudit>(
        client_, registry_, sync_.get(), metrics_,
        DeliveryAuditOptions{.interval = 1h, .grace = kGrace, .not_owning_after = kNotOwning},
        [this](const std::string& node, const kube::Object& pod) {
          repaired_.emplace_back(node, pod.meta.name);
        },
        [this](const std::string& node, std::uint64_t id) { reclaimed_.emplace_back(node, id); });
  }

  void TearDown() override {
    audit_->stop();
    sync_->stop();
    io_.poll();
  }

  void run_until(const std::function<bool()>& done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
  }

  // A session for `node`, owning once its claim is written.
  void connect(const std::string& node, std::uint64_t id, bool claim = true) {
    registry_.claim(std::make_shared<QuietSession>(node, id, io_));
    if (!claim) return;
    sync_->claim(node, id);
    run_until([&] { return registry_.owns(node); });
    ASSERT_TRUE(registry_.owns(node));
  }

  json create_pod(const std::string& name, const std::string& node) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
    return api_.store().create("pods", "default", pod);
  }

  void audit(const std::string& node) {
    bool done = false;
    boost::asio::co_spawn(io_, audit_->audit_node(node), [&](std::exception_ptr) { done = true; });
    run_until([&] { return done; });
    ASSERT_TRUE(done);
  }

  double counter(const std::string& name) {
    const auto text = metrics_.expose();
    const auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
  }

  static constexpr std::chrono::milliseconds kGrace{100};
  static constexpr std::chrono::milliseconds kNotOwning{100};
  devapi::Server api_{devapi::ServerOptions{}};
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  metrics::Registry metrics_;
  Registry registry_;
  std::unique_ptr<NodeSync> sync_;
  std::unique_ptr<DeliveryAudit> audit_;
  std::vector<std::pair<std::string, std::string>> repaired_;
  std::vector<std::pair<std::string, std::uint64_t>> reclaimed_;
};

TEST_F(Audit, APodNeverDeliveredIsRepairedOnceTheGracePassedAndCounted) {
  connect("edge-1", 1);
  create_pod("lost", "edge-1");  // no watch here: nothing delivers it
  audit("edge-1");
  EXPECT_TRUE(repaired_.empty()) << "first seen undelivered: within its grace";
  std::this_thread::sleep_for(kGrace + 50ms);
  audit("edge-1");
  ASSERT_EQ(repaired_.size(), 1u);
  EXPECT_EQ(repaired_[0], std::make_pair(std::string("edge-1"), std::string("lost")));
  EXPECT_EQ(counter("edgehub_delivery_repairs_total"), 1);
  audit("edge-1");
  EXPECT_EQ(repaired_.size(), 1u) << "a repair starts a new grace period";
}

// The schedule: every owned node is audited once per interval, in rounds; a node connected
// but not owning is not; a node owned after a round began is in the next one.
TEST_F(Audit, TheScheduleAuditsEveryOwnedNodeEachRoundAndNoOther) {
  std::vector<std::string> audited;
  metrics::Registry own_metrics;  // the fixture's audit has its metrics
  DeliveryAudit scheduled(
      client_, registry_, sync_.get(), own_metrics,
      DeliveryAuditOptions{.interval = 400ms, .grace = kGrace, .not_owning_after = 1h,
                           .max_lists_per_second = 100, .tick = 20ms},
      [&](const std::string& node, const kube::Object&) { audited.push_back(node); },
      [](const std::string&, std::uint64_t) {});
  for (const char* node : {"edge-c", "edge-a", "edge-b"}) {
    connect(node, 1);
    create_pod(std::string("lost-") + node, node);  // never delivered: repaired when audited
  }
  connect("edge-x", 9, false);
  create_pod("lost-edge-x", "edge-x");
  scheduled.start();
  const auto count = [&](const std::string& node) {
    return std::count(audited.begin(), audited.end(), node);
  };
  run_until([&] { return count("edge-a") > 0 && count("edge-b") > 0 && count("edge-c") > 0; });
  EXPECT_GT(count("edge-a"), 0);
  EXPECT_GT(count("edge-b"), 0);
  EXPECT_GT(count("edge-c"), 0);
  connect("edge-d", 2);
  create_pod("lost-edge-d", "edge-d");
  run_until([&] { return count("edge-d") > 0; });
  EXPECT_GT(count("edge-d"), 0) << "owned after the first round: audited in a later one";
  EXPECT_EQ(count("edge-x"), 0) << "not owning: not audited";
  scheduled.stop();
  io_.poll();
}

TEST_F(Audit, ADeliveredPodIsNeverRepairedNorATerminalOne) {
  connect("edge-1", 1);
  const auto pod = create_pod("held", "edge-1");
  const auto version = resource_version_number(pod["metadata"]["resourceVersion"].get<std::string>());
  const Change change{.kind = ObjectKind::pod, .ns = "default", .name = "held",
                      .uid = pod["metadata"]["uid"], .resource_version = version,
                      .operation = "insert", .object = std::make_shared<const std::string>("{}")};
  sync_->admit("edge-1", change);
  run_until([&] { return sync_->record("edge-1")->objects.contains(change.uid); });
  sync_->acked("edge-1", change);  // the edge ACKed the listed version
  auto done = create_pod("done", "edge-1");
  done["status"] = {{"phase", "Succeeded"}};
  api_.store().update("pods", "default", "done", done, /*status_subresource=*/true);
  audit("edge-1");
  std::this_thread::sleep_for(kGrace + 50ms);
  audit("edge-1");
  EXPECT_TRUE(repaired_.empty());
  EXPECT_EQ(counter("edgehub_delivery_repairs_total"), 0);
  EXPECT_EQ(counter("edgehub_delivery_audits_total"), 2);
}

TEST_F(Audit, AnOlderVersionAckedMeanwhileIsProgressNotALoss) {
  connect("edge-1", 1);
  auto pod = create_pod("busy", "edge-1");
  audit("edge-1");  // seen undelivered at version v1
  const auto v1 = resource_version_number(pod["metadata"]["resourceVersion"].get<std::string>());
  const Change change{.kind = ObjectKind::pod, .ns = "default", .name = "busy",
                      .uid = pod["metadata"]["uid"], .resource_version = v1,
                      .operation = "insert", .object = std::make_shared<const std::string>("{}")};
  sync_->admit("edge-1", change);
  run_until([&] { return sync_->record("edge-1")->objects.contains(change.uid); });
  sync_->acked("edge-1", change);
  pod["metadata"]["labels"] = {{"v", "2"}};  // a newer version, on its way to the edge
  api_.store().update("pods", "default", "busy", pod);
  std::this_thread::sleep_for(kGrace + 50ms);
  audit("edge-1");
  EXPECT_TRUE(repaired_.empty()) << "v1 was ACKed: the newer version gets its own grace";
}

TEST_F(Audit, ASessionThatStaysNotOwningIsReportedAndClaimedAgain) {
  connect("edge-1", 1, /*claim=*/false);  // its claim never reached NodeSync
  audit_->check_sessions();
  EXPECT_TRUE(reclaimed_.empty()) << "young sessions are still claiming";
  std::this_thread::sleep_for(kNotOwning + 50ms);
  audit_->check_sessions();
  ASSERT_EQ(reclaimed_.size(), 1u);
  EXPECT_EQ(reclaimed_[0], std::make_pair(std::string("edge-1"), std::uint64_t{1}));
  EXPECT_EQ(counter("edgehub_sessions_not_owning_total"), 1);
  audit_->check_sessions();
  EXPECT_EQ(reclaimed_.size(), 1u) << "reported once per period, not on every look";
  // The claim made now confirms the session: it is no longer reported.
  sync_->claim("edge-1", 1);
  run_until([&] { return registry_.owns("edge-1"); });
  std::this_thread::sleep_for(kNotOwning + 50ms);
  audit_->check_sessions();
  EXPECT_EQ(reclaimed_.size(), 1u);
}

}  // namespace
}  // namespace edgehub::hub

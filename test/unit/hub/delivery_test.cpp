#include <edgehub/hub/delivery.hpp>
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <vector>

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;

class DeliveryTest : public ::testing::Test {
 protected:
  void make(std::size_t window = 16) {
    delivery_ = std::make_unique<Delivery>(
        DeliveryOptions{.window = window, .retry_interval = 5s, .max_retry_interval = 20s},
        [this](const std::string& frame, SteadyClock::time_point received) {
          sent_.push_back(*wire::decode(frame));
          received_.push_back(received);
        },
        [this](const Change& c, SteadyClock::duration latency) {
          acked_.push_back(c);
          latencies_.push_back(latency);
        },
        [this] { return now_; });
  }
  static Change pod(const std::string& name, std::uint64_t rv, std::string op = "update") {
    return Change{.kind = ObjectKind::pod,
                  .ns = "default",
                  .name = name,
                  .uid = "uid-" + name,
                  .resource_version = rv,
                  .operation = std::move(op),
                  .object = std::make_shared<const std::string>(
                      R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":")" + name +
                      R"(","uid":"uid-)" + name + R"(","resourceVersion":")" +
                      std::to_string(rv) + R"("}})")};
  }
  void ack(std::size_t sent_index) {
    ASSERT_LT(sent_index, sent_.size());
    EXPECT_TRUE(delivery_->on_ack(sent_[sent_index].header.msg_id));
  }

  SteadyClock::time_point now_{};
  std::unique_ptr<Delivery> delivery_;
  std::vector<wire::Message> sent_;
  std::vector<SteadyClock::time_point> received_;  // per send
  std::vector<Change> acked_;
  std::vector<SteadyClock::duration> latencies_;
};

TEST_F(DeliveryTest, SendsTheObjectAsTheEdgeExpectsAndCompletesOnAck) {
  make();
  delivery_->enqueue(pod("web", 42, "insert"));
  ASSERT_EQ(sent_.size(), 1u);
  const auto& m = sent_[0];
  EXPECT_EQ(m.route.source, "edgecontroller");
  EXPECT_EQ(m.route.group, "resource");
  EXPECT_EQ(m.route.operation, "insert");
  EXPECT_EQ(m.route.resource, "default/pod/web");
  EXPECT_EQ(m.header.resource_version, "42");
  EXPECT_EQ(m.content_json()["metadata"]["uid"], "uid-web");
  EXPECT_TRUE(wire::needs_ack(m));
  EXPECT_EQ(delivery_->in_flight(), 1u);

  now_ += 120ms;
  ack(0);
  ASSERT_EQ(acked_.size(), 1u);
  EXPECT_EQ(acked_[0].resource_version, 42u);
  EXPECT_EQ(latencies_[0], 120ms);
  EXPECT_EQ(delivery_->in_flight(), 0u);
  EXPECT_EQ(delivery_->acked_version("uid-web"), 42u);
  EXPECT_FALSE(delivery_->on_ack(sent_[0].header.msg_id)) << "a second ACK matches nothing";
}

TEST_F(DeliveryTest, ClusterScopedAndDeviceRoutes) {
  make();
  delivery_->enqueue(Change{.kind = ObjectKind::node, .name = "edge-1", .uid = "n",
                            .resource_version = 3, .operation = "update"});
  delivery_->enqueue(Change{.kind = ObjectKind::device, .ns = "default", .name = "thermo",
                            .uid = "d", .resource_version = 4, .operation = "insert"});
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[0].route.resource, "null/node/edge-1");
  EXPECT_EQ(sent_[1].route.resource, "default/device/thermo");
  EXPECT_EQ(sent_[1].route.source, "devicecontroller");
}

TEST_F(DeliveryTest, WindowBoundsMessagesAwaitingAck) {
  make(16);
  for (int i = 0; i < 20; ++i) delivery_->enqueue(pod("p" + std::to_string(i), 10));
  EXPECT_EQ(sent_.size(), 16u);
  EXPECT_EQ(delivery_->queued(), 4u);
  ack(3);
  EXPECT_EQ(sent_.size(), 17u);
  EXPECT_EQ(sent_.back().route.resource, "default/pod/p16") << "FIFO across objects";
}

TEST_F(DeliveryTest, NewerVersionReplacesAnUnsentOlderOne) {
  make(1);
  delivery_->enqueue(pod("a", 1));
  delivery_->enqueue(pod("b", 2));
  delivery_->enqueue(pod("b", 5));
  ASSERT_EQ(sent_.size(), 1u);
  ack(0);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].header.resource_version, "5");
  EXPECT_EQ(delivery_->stats().superseded, 1u);
}

TEST_F(DeliveryTest, OneVersionOfAnObjectInFlightKeepsPerObjectOrder) {
  make();
  delivery_->enqueue(pod("a", 1));
  delivery_->enqueue(pod("a", 2));
  ASSERT_EQ(sent_.size(), 1u) << "v2 waits for v1's ACK";
  now_ += 6s;
  delivery_->on_timer();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].header.resource_version, "1") << "the retry is still v1";
  ack(0);
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_EQ(sent_[2].header.resource_version, "2");
}

TEST_F(DeliveryTest, DeleteWins) {
  make(1);
  delivery_->enqueue(pod("x", 1));
  delivery_->enqueue(pod("a", 5, "insert"));
  delivery_->enqueue(pod("a", 6, "delete"));
  delivery_->enqueue(pod("a", 7, "update"));  // an update after the delete is stale
  ack(0);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].route.operation, "delete");
  ack(1);
  EXPECT_EQ(delivery_->acked_version("uid-a"), 0u) << "deleted objects leave no trace";
  EXPECT_EQ(delivery_->stats().stale, 1u);
}

// A list answered before a delete must not bring the object back after the delete's ACK.
TEST_F(DeliveryTest, DeletedObjectsStayDeleted) {
  make();
  delivery_->enqueue(pod("a", 5));
  ack(0);
  delivery_->enqueue(pod("a", 9, "delete"));
  ack(1);
  delivery_->enqueue(pod("a", 5));  // from a list taken before the delete
  delivery_->enqueue(pod("a", 9, "delete"));
  EXPECT_EQ(sent_.size(), 2u);
  EXPECT_EQ(delivery_->stats().stale, 2u);
}

TEST_F(DeliveryTest, StaleVersionsAreDropped) {
  make();
  delivery_->enqueue(pod("a", 5));
  ack(0);
  delivery_->enqueue(pod("a", 5));
  delivery_->enqueue(pod("a", 4));
  EXPECT_EQ(sent_.size(), 1u);
  EXPECT_EQ(delivery_->stats().stale, 2u);
  delivery_->enqueue(pod("a", 6));
  EXPECT_EQ(sent_.size(), 2u);
}

TEST_F(DeliveryTest, RetriesWithBackoffUntilAcked) {
  make();
  delivery_->enqueue(pod("a", 1));
  EXPECT_EQ(delivery_->next_deadline(), now_ + 5s);
  now_ += 4s;
  delivery_->on_timer();
  EXPECT_EQ(sent_.size(), 1u);
  now_ += 1s;
  delivery_->on_timer();
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].header.msg_id, sent_[0].header.msg_id) << "a retry is the same message";
  EXPECT_EQ(delivery_->next_deadline(), now_ + 10s);
  now_ += 10s;
  delivery_->on_timer();
  EXPECT_EQ(delivery_->next_deadline(), now_ + 20s);
  now_ += 20s;
  delivery_->on_timer();
  EXPECT_EQ(delivery_->next_deadline(), now_ + 20s) << "capped";
  EXPECT_EQ(delivery_->stats().retried, 3u);
  ack(0);
  EXPECT_EQ(latencies_[0], 35s);
  EXPECT_FALSE(delivery_->next_deadline());
  now_ += 1h;
  delivery_->on_timer();
  EXPECT_EQ(sent_.size(), 4u);
}

// The watch-event time goes with the first send only: a retry's write is no measure of the
// hub's event → socket latency.
TEST_F(DeliveryTest, FirstSendCarriesTheWatchEventTimeRetriesDoNot) {
  make();
  auto stamped = pod("a", 1);
  stamped.received = now_ - 3ms;
  delivery_->enqueue(std::move(stamped));
  delivery_->enqueue(pod("b", 1));  // from a list: no watch event
  now_ += 5s;
  delivery_->on_timer();
  ASSERT_EQ(received_.size(), 4u);
  EXPECT_EQ(received_[0], SteadyClock::time_point{} - 3ms);
  EXPECT_EQ(received_[1], SteadyClock::time_point{});
  EXPECT_EQ(received_[2], SteadyClock::time_point{});
  EXPECT_EQ(received_[3], SteadyClock::time_point{});
}

// An agent that loses a few ACKs holds back only those objects: the rest of the window keeps
// flowing, and the lost ones are re-sent until ACKed.
TEST_F(DeliveryTest, LostAcksHoldBackOnlyTheirObjects) {
  make(16);
  for (int i = 0; i < 100; ++i) delivery_->enqueue(pod("p" + std::to_string(i), 1));
  std::vector<std::string> lost;
  for (std::size_t next = 0; next < sent_.size(); ++next) {
    if (next % 30 == 0) {
      lost.push_back(sent_[next].header.msg_id);
      continue;
    }
    EXPECT_TRUE(delivery_->on_ack(sent_[next].header.msg_id));
  }
  EXPECT_EQ(acked_.size(), 100u - lost.size());
  EXPECT_EQ(delivery_->in_flight(), lost.size());
  now_ += 5s;
  delivery_->on_timer();
  EXPECT_EQ(sent_.size(), 100u + lost.size()) << "each lost one re-sent once";
  for (const auto& id : lost) EXPECT_TRUE(delivery_->on_ack(id));
  EXPECT_EQ(acked_.size(), 100u);
  EXPECT_EQ(delivery_->in_flight(), 0u);
}

}  // namespace
}  // namespace edgehub::hub

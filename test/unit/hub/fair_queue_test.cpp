// FairQueue: class shares between request classes, turns between nodes, a per-node cap.

#include <edgehub/hub/fair_queue.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgehub::hub {
namespace {

using kube::Priority;

std::vector<std::string> drain(FairQueue<int>& q, std::size_t n) {
  std::vector<std::string> nodes;
  for (std::size_t i = 0; i < n; ++i) {
    auto next = q.pop();
    if (!next) break;
    nodes.push_back(next->node);
  }
  return nodes;
}

TEST(FairQueue, AFloodingNodeDelaysOthersByOneTurn) {
  FairQueue<int> q(1000);
  for (int i = 0; i < 500; ++i) q.push("flood", Priority::Lease, i, 100);
  q.push("edge-a", Priority::Lease, 0, 100);
  q.push("edge-b", Priority::Lease, 0, 100);
  const auto order = drain(q, 4);
  EXPECT_EQ(order, (std::vector<std::string>{"flood", "edge-a", "edge-b", "flood"}));
}

TEST(FairQueue, ANodeHoldsAtMostItsCapOfSlots) {
  FairQueue<int> q(4);
  for (int i = 0; i < 10; ++i) q.push("flood", Priority::Bulk, i, 10);
  EXPECT_EQ(drain(q, 100).size(), 4u) << "the node's further requests wait";
  EXPECT_FALSE(q.may_start("flood"));
  EXPECT_TRUE(q.may_start("edge-a")) << "another node's request starts at once";
  q.push("edge-a", Priority::Bulk, 0, 10);
  EXPECT_EQ(drain(q, 100), std::vector<std::string>{"edge-a"});
  q.finished("flood");
  EXPECT_EQ(drain(q, 100), std::vector<std::string>{"flood"});
  EXPECT_EQ(q.waiting("flood"), 5u);
  EXPECT_EQ(q.in_progress("flood"), 4u);
}

TEST(FairQueue, LeasesBeyondTheSlotsStarveNoClass) {
  FairQueue<int> q(1'000'000);
  for (int i = 0; i < 1000; ++i) q.push("edge-" + std::to_string(i), Priority::Lease, i, 10);
  for (int i = 0; i < 10; ++i) q.push("new-" + std::to_string(i), Priority::Status, i, 10);
  const auto order = drain(q, 30);
  int registrations = 0;
  for (const auto& node : order) registrations += node.rfind("new-", 0) == 0 ? 1 : 0;
  // Lease 8 : Status 4 — a third of the turns go to the registrations.
  EXPECT_EQ(registrations, 10);
}

TEST(FairQueue, CountsWaitingRequestsAndBytes) {
  FairQueue<int> q(2);
  EXPECT_TRUE(q.may_start("edge-a"));
  q.started("edge-a");
  q.push("edge-a", Priority::Status, 1, 300);
  q.push("edge-b", Priority::Bulk, 2, 200);
  EXPECT_EQ(q.waiting(), 2u);
  EXPECT_EQ(q.waiting_bytes(), 500u);
  EXPECT_FALSE(q.may_start("edge-c")) << "a waiting request that may start goes first";
  auto next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->node, "edge-a");
  EXPECT_EQ(next->item, 1);
  EXPECT_EQ(q.waiting_bytes(), 200u);
  q.finished("edge-a");
  q.finished("edge-a");
  EXPECT_EQ(q.nodes(), 1u) << "a node with nothing waiting or in progress is forgotten";
  ASSERT_TRUE(q.pop());
  q.finished("edge-b");
  EXPECT_EQ(q.nodes(), 0u);
  EXPECT_EQ(q.waiting(), 0u);
  EXPECT_EQ(q.waiting_bytes(), 0u);
}

}  // namespace
}  // namespace edgehub::hub

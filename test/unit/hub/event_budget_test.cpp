// The per-node event limit, on a fake clock: no sleeping.
#include <edgehub/hub/event_budget.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  std::shared_ptr<EventBudget::Clock::time_point> now =
      std::make_shared<EventBudget::Clock::time_point>(std::chrono::hours(1));
  EventBudget::Now fn() const {
    return [now = now] { return *now; };
  }
  void advance(EventBudget::Clock::duration d) const { *now += d; }
};

int allowed(EventBudget& budget, const std::string& node, int tries) {
  int n = 0;
  for (int i = 0; i < tries; ++i) n += budget.take(node).allowed ? 1 : 0;
  return n;
}

TEST(EventBudget, ABurstThenTheRateAsTheKubeletRecords) {
  FakeClock clock;
  EventBudget budget(50, 100, clock.fn());
  EXPECT_EQ(allowed(budget, "edge-1", 150), 100);
  clock.advance(1s);
  EXPECT_EQ(allowed(budget, "edge-1", 150), 50);
  // Another node has its own bucket.
  EXPECT_EQ(allowed(budget, "edge-2", 100), 100);
}

TEST(EventBudget, DropsAreReportedAtMostOnceAMinuteWithTheirCount) {
  FakeClock clock;
  EventBudget budget(1, 1, clock.fn());
  EXPECT_TRUE(budget.take("edge-1").allowed);
  const auto first = budget.take("edge-1");
  EXPECT_FALSE(first.allowed);
  EXPECT_EQ(first.report_dropped, 1u);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(budget.take("edge-1").report_dropped, 0u);
  clock.advance(61s);
  EXPECT_TRUE(budget.take("edge-1").allowed);
  const auto later = budget.take("edge-1");
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.report_dropped, 10u) << "the nine unreported drops and this one";
}

TEST(EventBudget, ZeroQpsIsNoLimit) {
  EventBudget budget(0, 1);
  EXPECT_EQ(allowed(budget, "edge-1", 1000), 1000);
  EXPECT_EQ(budget.nodes(), 0u);
}

TEST(EventBudget, QuietNodesAreForgotten) {
  FakeClock clock;
  EventBudget budget(50, 100, clock.fn());
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_TRUE(budget.take("edge-" + std::to_string(i)).allowed);
    clock.advance(100ms);  // each bucket is full again 20 ms after its event
  }
  EXPECT_LE(budget.nodes(), 1025u);
}

}  // namespace
}  // namespace edgehub::hub

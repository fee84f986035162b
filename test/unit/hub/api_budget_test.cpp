// When the API budget cannot keep up with the replica's edges, it says so and names the
// setting to raise.

#include <edgehub/hub/api_budget.hpp>
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace edgehub::hub {
namespace {

TEST(ApiBudget, LeasesOfTheFleetBeyondQpsAreAShortfall) {
  const auto warning = budget_shortfall({.qps = 100, .nodes = 2000, .waiting = 512});
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("kube.qps 100 cannot keep up: leases of 2000 nodes need 200 writes/s"),
            std::string::npos)
      << *warning;
  EXPECT_NE(warning->find("raise kube.qps"), std::string::npos) << *warning;
}

TEST(ApiBudget, LongWaitsAreAShortfall) {
  EXPECT_TRUE(budget_shortfall({.qps = 2500, .nodes = 10, .waiting = 3, .oldest_wait_seconds = 12}));
}

TEST(ApiBudget, TheDefaultsServeMaxConnections) {
  EXPECT_FALSE(budget_shortfall({.qps = 2500, .nodes = 19000, .waiting = 40,
                                 .oldest_wait_seconds = 0.5}));
  EXPECT_FALSE(budget_shortfall({.qps = 0, .nodes = 19000}));
}

TEST(ApiBudget, AShareOfTheFleetBudgetNamesKubeFleetQps) {
  const auto warning = budget_shortfall({.qps = 150, .fleet = true, .nodes = 2000});
  ASSERT_TRUE(warning);
  EXPECT_NE(warning->find("this replica's share of kube.fleetQps, 150 cannot keep up"),
            std::string::npos)
      << *warning;
  EXPECT_NE(warning->find("raise kube.fleetQps"), std::string::npos) << *warning;
}

// 100,000 edges on six replicas, one of them restarted and nearly empty: every replica gets
// its own renewals plus a sixth of what the fleet's renewals leave.
TEST(FleetShare, RenewalsOfItsOwnEdgesPlusAnEqualPartOfTheRest) {
  const std::vector<std::size_t> counts{20'000, 20'000, 20'000, 20'000, 19'000, 1'000};
  const double fleet = 20'000;  // edges / 5: twice the renewals (10,000/s)
  double sum = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    std::vector<std::size_t> others = counts;
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(i));
    const double share = fleet_share(fleet, 100'000, counts[i], others);
    EXPECT_NEAR(share, static_cast<double>(counts[i]) / 10 + 10'000.0 / 6, 1e-6) << i;
    sum += share;
  }
  EXPECT_NEAR(sum, fleet, 1e-6);  // the replicas together never exceed the budget
}

TEST(FleetShare, NeverMoreThanKubeQps) {
  EXPECT_DOUBLE_EQ(fleet_share(20'000, 2'500, 16'000, {16'000, 16'000}), 2'500);
}

TEST(FleetShare, ProportionalWhenTheRenewalsAloneExceedTheBudget) {
  // 30,000 edges renew 3,000 times a second; the budget is 1,500.
  EXPECT_DOUBLE_EQ(fleet_share(1'500, 2'500, 20'000, {10'000}), 1'000);
  EXPECT_DOUBLE_EQ(fleet_share(1'500, 2'500, 10'000, {20'000}), 500);
}

TEST(FleetShare, AnEmptyFleetSplitsTheBudgetEvenly) {
  EXPECT_DOUBLE_EQ(fleet_share(900, 2'500, 0, {0, 0}), 300);
  EXPECT_DOUBLE_EQ(fleet_share(900, 2'500, 0, {}), 900);
}

}  // namespace
}  // namespace edgehub::hub

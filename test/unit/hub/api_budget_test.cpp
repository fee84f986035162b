// When the API budget cannot keep up with the replica's edges, it says so and names the
// setting to raise.

#include <edgehub/hub/api_budget.hpp>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace edgehub::hub

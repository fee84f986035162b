// Priority token bucket driven by a fake clock: no sleeping.

#include <edgehub/kube/rate_limiter.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgehub::kube {
namespace {

struct FakeClock {
  RateLimiter::Clock::time_point t{};
  RateLimiter::Now fn() {
    return [this] { return t; };
  }
  void advance(std::chrono::milliseconds d) { t += d; }
};

TEST(KubeRateLimiter, BurstThenQps) {
  FakeClock clock;
  RateLimiter rl(10, 5, clock.fn());
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rl.try_acquire(Priority::Bulk)) << i;
  EXPECT_FALSE(rl.try_acquire(Priority::Bulk));
  clock.advance(std::chrono::milliseconds(100));
  EXPECT_TRUE(rl.try_acquire(Priority::Bulk));
  EXPECT_FALSE(rl.try_acquire(Priority::Lease));
  clock.advance(std::chrono::seconds(60));
  EXPECT_DOUBLE_EQ(rl.tokens(), 5.0);  // capped at burst
}

TEST(KubeRateLimiter, LeaseOvertakesQueuedBulk) {
  FakeClock clock;
  RateLimiter rl(10, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) rl.enqueue(Priority::Bulk, [&, i] { order.push_back("bulk" + std::to_string(i)); });
  rl.enqueue(Priority::NodeSync, [&] { order.push_back("nodesync"); });
  rl.enqueue(Priority::Status, [&] { order.push_back("status"); });
  // A new lease request cannot take a token now (none left) but goes first in the queue.
  EXPECT_FALSE(rl.try_acquire(Priority::Lease));
  rl.enqueue(Priority::Lease, [&] { order.push_back("lease"); });

  auto wait = rl.poll();
  ASSERT_TRUE(wait);
  EXPECT_TRUE(order.empty());
  EXPECT_LE(*wait, std::chrono::milliseconds(101));
  EXPECT_GE(*wait, std::chrono::milliseconds(99));
  while (rl.waiting() > 0) {
    clock.advance(std::chrono::milliseconds(100));
    rl.poll();
  }
  EXPECT_EQ(order, (std::vector<std::string>{"lease", "status", "nodesync", "bulk0", "bulk1", "bulk2"}));
  EXPECT_FALSE(rl.poll());
}

TEST(KubeRateLimiter, WaitingHigherPriorityBlocksLowerTryAcquire) {
  FakeClock clock;
  RateLimiter rl(1, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  bool granted = false;
  rl.enqueue(Priority::Status, [&] { granted = true; });
  clock.advance(std::chrono::seconds(1));
  // The token that came back belongs to the waiting status request, not to a new bulk one...
  EXPECT_FALSE(rl.try_acquire(Priority::Bulk));
  // ...while a lease, more urgent than the waiter, may take it directly.
  EXPECT_TRUE(rl.try_acquire(Priority::Lease));
  EXPECT_TRUE(rl.poll());
  clock.advance(std::chrono::seconds(1));
  EXPECT_FALSE(rl.poll());
  EXPECT_TRUE(granted);
}

TEST(KubeRateLimiter, ZeroQpsIsUnlimited) {
  FakeClock clock;
  RateLimiter rl(0, 1, clock.fn());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
}

}  // namespace
}  // namespace edgehub::kube

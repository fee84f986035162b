// Token bucket with class shares, driven by a fake clock: no sleeping.

#include <edgehub/kube/rate_limiter.hpp>

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(KubeRateLimiter, SetRateKeepsEarnedTokensUpToTheNewBurst) {
  FakeClock clock;
  RateLimiter rl(10, 20, clock.fn());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(rl.try_acquire(Priority::Bulk)) << i;
  clock.advance(std::chrono::milliseconds(500));  // 5 tokens at the old rate
  rl.set_rate(100, 4);
  EXPECT_DOUBLE_EQ(rl.qps(), 100);
  EXPECT_DOUBLE_EQ(rl.tokens(), 4.0);  // capped at the new burst
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(rl.try_acquire(Priority::Bulk)) << i;
  EXPECT_FALSE(rl.try_acquire(Priority::Bulk));
  clock.advance(std::chrono::milliseconds(20));  // 2 tokens at the new rate
  EXPECT_DOUBLE_EQ(rl.tokens(), 2.0);
  rl.set_rate(1, 4);
  clock.advance(std::chrono::milliseconds(1000));
  EXPECT_DOUBLE_EQ(rl.tokens(), 3.0);
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

TEST(KubeRateLimiter, NothingOvertakesAWaitingRequest) {
  FakeClock clock;
  RateLimiter rl(1, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  bool granted = false;
  rl.enqueue(Priority::Status, [&] { granted = true; });
  clock.advance(std::chrono::seconds(1));
  // The token that came back belongs to the waiting request, whatever the class asking: a
  // lease goes through the queue too, where its share puts it first.
  EXPECT_FALSE(rl.try_acquire(Priority::Bulk));
  EXPECT_FALSE(rl.try_acquire(Priority::Lease));
  EXPECT_FALSE(rl.poll());
  EXPECT_TRUE(granted);
}

// The failure of strict priority: leases alone want more than the budget, yet status
// requests (node registration) and bulk requests still get their shares.
TEST(KubeRateLimiter, LeasesBeyondTheBudgetStarveNoClass) {
  FakeClock clock;
  RateLimiter rl(10, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  std::vector<Priority> order;
  const auto add = [&](Priority p) { rl.enqueue(p, [&order, p] { order.push_back(p); }); };
  for (int i = 0; i < 20; ++i) add(Priority::Status);
  for (int i = 0; i < 5; ++i) add(Priority::Bulk);
  // Leases keep coming faster than tokens: two new ones for every token.
  for (int tick = 0; tick < 300; ++tick) {
    add(Priority::Lease);
    add(Priority::Lease);
    clock.advance(std::chrono::milliseconds(100));
    rl.poll();
  }
  ASSERT_EQ(order.size(), 300u);
  const auto served = [&](Priority p, std::size_t first) {
    return std::count(order.begin(), order.begin() + static_cast<long>(first), p);
  };
  // Of the first 45 grants, leases take 8 of every 13 (NodeSync's unused share of 15 goes to
  // the others in proportion)...
  EXPECT_EQ(served(Priority::Lease, 45), 27);
  // ...status 4 and bulk 1.
  EXPECT_GE(served(Priority::Status, 45), 12);
  EXPECT_GE(served(Priority::Bulk, 45), 3);
  EXPECT_EQ(served(Priority::Status, 300), 20) << "every registration ran";
  EXPECT_EQ(served(Priority::Bulk, 300), 5);
  EXPECT_GT(rl.oldest_wait_seconds(Priority::Lease), 0.0) << "the leases' backlog shows";
  EXPECT_EQ(rl.oldest_wait_seconds(Priority::Status), 0.0);
}

// A class that waited for nothing for a while gets no credit for it: it cannot take the whole
// budget from a busy class when its requests arrive.
TEST(KubeRateLimiter, AnIdleClassBanksNoCredit) {
  FakeClock clock;
  RateLimiter rl(10, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  std::vector<Priority> order;
  const auto add = [&](Priority p) { rl.enqueue(p, [&order, p] { order.push_back(p); }); };
  for (int i = 0; i < 100; ++i) add(Priority::Bulk);
  for (int i = 0; i < 50; ++i) {
    clock.advance(std::chrono::milliseconds(100));
    rl.poll();
  }
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 100; ++i) add(Priority::Lease);
  order.clear();
  for (int i = 0; i < 20; ++i) {
    clock.advance(std::chrono::milliseconds(100));
    rl.poll();
  }
  ASSERT_EQ(order.size(), 20u);
  // About 8 leases for each bulk request from the start, not 400 leases first (the credit 50
  // bulk grants would have left the leases).
  EXPECT_EQ(std::count(order.begin(), order.end(), Priority::Bulk), 2);
}

TEST(KubeRateLimiter, OldestWaitPerClass) {
  FakeClock clock;
  RateLimiter rl(1, 1, clock.fn());
  ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
  rl.enqueue(Priority::NodeSync, [] {});
  clock.advance(std::chrono::milliseconds(500));
  rl.enqueue(Priority::Bulk, [] {});
  EXPECT_DOUBLE_EQ(rl.oldest_wait_seconds(Priority::NodeSync), 0.5);
  EXPECT_DOUBLE_EQ(rl.oldest_wait_seconds(Priority::Bulk), 0.0);
  clock.advance(std::chrono::milliseconds(600));
  ASSERT_TRUE(rl.poll());  // NodeSync granted, bulk still waits
  EXPECT_DOUBLE_EQ(rl.oldest_wait_seconds(Priority::NodeSync), 0.0);
  EXPECT_DOUBLE_EQ(rl.oldest_wait_seconds(Priority::Bulk), 0.6);
}

TEST(KubeRateLimiter, ZeroQpsIsUnlimited) {
  FakeClock clock;
  RateLimiter rl(0, 1, clock.fn());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(rl.try_acquire(Priority::Bulk));
}

}  // namespace
}  // namespace edgehub::kube

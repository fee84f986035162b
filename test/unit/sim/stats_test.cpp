#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/sim/stats.hpp>

#include "scheduler.hpp"

namespace edgehub::sim {
namespace {

TEST(Histogram, BucketsAreMonotonicAndBounded) {
  for (std::int64_t v : {0LL, 1LL, 15LL, 16LL, 17LL, 1000LL, 123456LL, 1LL << 39}) {
    const int b = Histogram::bucket_of(v);
    EXPECT_LE(Histogram::lower_bound_of(b), v);
    if (b + 1 < Histogram::kBuckets) {
      EXPECT_GT(Histogram::lower_bound_of(b + 1), v);
    }
  }
  EXPECT_EQ(Histogram::bucket_of(-5), 0);
  EXPECT_EQ(Histogram::bucket_of(1LL << 62), Histogram::kBuckets - 1);
}

TEST(Histogram, PercentilesWithinBucketPrecision) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(i * 1000);  // 1 … 1000 ms
  std::array<std::uint64_t, Histogram::kBuckets> counts{};
  h.merge_into(counts);
  const auto s = LatencySummary::from(counts);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_NEAR(s.p50_ms, 500, 500 * 0.07);
  EXPECT_NEAR(s.p99_ms, 990, 990 * 0.07);
  EXPECT_NEAR(s.max_ms, 1000, 1000 * 0.07);
}

TEST(Scheduler, RunsCallbacksInDueOrder) {
  boost::asio::io_context ioc;
  Scheduler scheduler(ioc);
  std::vector<int> order;
  const auto base = Scheduler::Clock::now();
  scheduler.at(base + std::chrono::milliseconds(3), [&] { order.push_back(3); });
  scheduler.at(base + std::chrono::milliseconds(1), [&] { order.push_back(1); });
  scheduler.at(base + std::chrono::milliseconds(2), [&] {
    order.push_back(2);
    scheduler.at(base, [&] { order.push_back(20); });  // already due: runs next
  });
  scheduler.at(base + std::chrono::milliseconds(1), [&] { order.push_back(11); });  // FIFO on ties
  ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(order, (std::vector<int>{1, 11, 2, 20, 3}));
  EXPECT_EQ(scheduler.size(), 0u);
}

TEST(FdLimit, ExplainsWhenTooManyNodes) {
  EXPECT_EQ(ensure_fd_limit(16), "");
  const auto why = ensure_fd_limit(1ULL << 40);
  EXPECT_NE(why.find("hard limit"), std::string::npos) << why;
}

}  // namespace
}  // namespace edgehub::sim

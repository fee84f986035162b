#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>

namespace edgehub::kube {

// Request classes, most urgent first: a late lease renewal makes a node NotReady, so lease
// writes must never wait behind bulk work.
enum class Priority : unsigned { Lease = 0, Status = 1, NodeSync = 2, Bulk = 3 };
inline constexpr std::size_t kPriorityCount = 4;

// Token bucket (QPS refill, burst capacity) shared by all priorities; waiting requests are
// granted strictly by priority, FIFO within a priority. Not thread-safe: it lives on the
// client's executor. Time comes from an injected clock so tests need no sleeping.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Grant = std::function<void()>;

  // qps <= 0 disables limiting.
  RateLimiter(double qps, double burst, Now now = &Clock::now);

  // Takes a token at once if one is free and no request of the same or a higher priority is
  // waiting.
  bool try_acquire(Priority p);
  // Queues a request; `grant` runs from a later poll() when its turn comes.
  void enqueue(Priority p, Grant grant);
  // Grants queued requests while tokens last. Returns how long until the next token when
  // requests are still waiting, nullopt when none are.
  std::optional<Clock::duration> poll();

  std::size_t waiting(Priority p) const { return queues_[static_cast<std::size_t>(p)].size(); }
  std::size_t waiting() const;
  // The same total, readable from any thread (a metric).
  const std::atomic<std::size_t>& waiting_now() const { return waiting_now_; }
  double tokens();

 private:
  void refill();
  bool higher_or_equal_waiting(Priority p) const;

  double qps_;
  double burst_;
  double tokens_;
  Now now_;
  Clock::time_point last_;
  std::atomic<std::size_t> waiting_now_{0};
  std::array<std::deque<Grant>, kPriorityCount> queues_;
};

}  // namespace edgehub::kube

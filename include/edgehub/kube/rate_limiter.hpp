#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>

namespace edgehub::kube {

// Request classes, most urgent first: a late lease renewal makes a node NotReady, so lease
// writes get the largest share of the budget.
enum class Priority : unsigned { Lease = 0, Status = 1, NodeSync = 2, Bulk = 3 };
inline constexpr std::size_t kPriorityCount = 4;

// Shares of a budget between the classes when several wait (stride scheduling, a form of
// weighted fair queueing): of every 15 grants, a class that wants them gets at least 8
// (Lease), 4 (Status), 2 (NodeSync) or 1 (Bulk); a class with nothing waiting leaves its share
// to the others. No class can starve another: strict priority let Lease renewals beyond the
// budget keep registrations waiting forever. Used by the rate limiter and by Upstream's
// waiting queue.
class ClassShares {
 public:
  static constexpr std::array<unsigned, kPriorityCount> kWeights{8, 4, 2, 1};

  // A class that had nothing waiting has some now: it starts at the current virtual time, so
  // an idle class does not bank credit to starve the others later.
  void activate(std::size_t c);
  // The class to serve next among those `waiting` says have requests (ties: more urgent
  // first); nullopt when none has.
  std::optional<std::size_t> pick(const std::array<bool, kPriorityCount>& waiting) const;
  // `c` was served once.
  void charge(std::size_t c);

 private:
  std::array<std::uint64_t, kPriorityCount> pass_{};
  std::uint64_t now_ = 0;
};

// Token bucket (QPS refill, burst capacity) shared by all classes; waiting requests are
// granted by ClassShares between classes, FIFO within a class. Not thread-safe: it lives on
// the client's executor. Time comes from an injected clock so tests need no sleeping.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;
  using Grant = std::function<void()>;

  // qps <= 0 disables limiting.
  RateLimiter(double qps, double burst, Now now = &Clock::now);

  // Takes a token at once if one is free and no request is waiting (a waiting one would be
  // overtaken).
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
  // How long the oldest request of class `p` has waited (zero when none waits); readable from
  // any thread, as of the last enqueue or poll.
  double oldest_wait_seconds(Priority p) const {
    return oldest_[static_cast<std::size_t>(p)].load(std::memory_order_relaxed);
  }
  double qps() const { return qps_; }
  // A new rate and burst from now on (kube.fleetQps: the replica's share changes with the
  // fleet). Tokens earned so far are kept, up to the new burst. qps must be > 0 when the
  // limiter was made with qps > 0.
  void set_rate(double qps, double burst);
  double tokens();

 private:
  struct Waiter {
    Clock::time_point since;
    Grant grant;
  };
  void refill();
  void note_oldest(Clock::time_point now);

  double qps_;
  double burst_;
  double tokens_;
  Now now_;
  Clock::time_point last_;
  std::atomic<std::size_t> waiting_now_{0};
  std::array<std::atomic<double>, kPriorityCount> oldest_{};
  std::array<std::deque<Waiter>, kPriorityCount> queues_;
  ClassShares shares_;
};

}  // namespace edgehub::kube

#include <edgehub/kube/rate_limiter.hpp>

#include <algorithm>
#include <cmath>

namespace edgehub::kube {

RateLimiter::RateLimiter(double qps, double burst, Now now)
    : qps_(qps), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)), now_(std::move(now)),
      last_(now_()) {}

void RateLimiter::refill() {
  auto t = now_();
  if (t <= last_) return;
  double elapsed = std::chrono::duration<double>(t - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * qps_);
  last_ = t;
}

double RateLimiter::tokens() {
  refill();
  return tokens_;
}

bool RateLimiter::higher_or_equal_waiting(Priority p) const {
  for (std::size_t i = 0; i <= static_cast<std::size_t>(p); ++i) {
    if (!queues_[i].empty()) return true;
  }
  return false;
}

std::size_t RateLimiter::waiting() const {
  std::size_t n = 0;
  for (const auto& q : queues_) n += q.size();
  return n;
}

bool RateLimiter::try_acquire(Priority p) {
  if (qps_ <= 0) return true;
  if (higher_or_equal_waiting(p)) return false;
  refill();
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void RateLimiter::enqueue(Priority p, Grant grant) {
  queues_[static_cast<std::size_t>(p)].push_back(std::move(grant));
  waiting_now_.fetch_add(1, std::memory_order_relaxed);
}

std::optional<RateLimiter::Clock::duration> RateLimiter::poll() {
  refill();
  for (auto& q : queues_) {
    while (!q.empty()) {
      if (qps_ > 0 && tokens_ < 1.0) {
        double missing = 1.0 - tokens_;
        auto wait = std::chrono::duration<double>(missing / qps_);
        return std::max<Clock::duration>(
            std::chrono::duration_cast<Clock::duration>(wait) + Clock::duration(1),
            Clock::duration(1));
      }
      if (qps_ > 0) tokens_ -= 1.0;
      Grant g = std::move(q.front());
      q.pop_front();
      waiting_now_.fetch_sub(1, std::memory_order_relaxed);
      g();  // may enqueue more; the loop sees them in order
    }
  }
  return std::nullopt;
}

}  // namespace edgehub::kube

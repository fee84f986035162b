#include <edgehub/kube/rate_limiter.hpp>

#include <algorithm>
#include <cmath>

namespace edgehub::kube {

namespace {

// Virtual time a class advances per grant: inversely proportional to its weight.
constexpr std::uint64_t stride(std::size_t c) {
  return ClassShares::kWeights[0] / ClassShares::kWeights[c];
}

}  // namespace

void ClassShares::activate(std::size_t c) { pass_[c] = std::max(pass_[c], now_); }

std::optional<std::size_t> ClassShares::pick(const std::array<bool, kPriorityCount>& waiting) const {
  std::optional<std::size_t> best;
  for (std::size_t c = 0; c < kPriorityCount; ++c) {
    if (waiting[c] && (!best || pass_[c] < pass_[*best])) best = c;
  }
  return best;
}

void ClassShares::charge(std::size_t c) {
  now_ = std::max(now_, pass_[c]);
  pass_[c] += stride(c);
}

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

void RateLimiter::set_rate(double qps, double burst) {
  refill();
  qps_ = qps;
  burst_ = std::max(1.0, burst);
  tokens_ = std::min(tokens_, burst_);
}

double RateLimiter::tokens() {
  refill();
  return tokens_;
}

std::size_t RateLimiter::waiting() const {
  std::size_t n = 0;
  for (const auto& q : queues_) n += q.size();
  return n;
}

void RateLimiter::note_oldest(Clock::time_point now) {
  for (std::size_t c = 0; c < kPriorityCount; ++c) {
    const double age =
        queues_[c].empty() ? 0.0
                           : std::chrono::duration<double>(now - queues_[c].front().since).count();
    oldest_[c].store(std::max(0.0, age), std::memory_order_relaxed);
  }
}

bool RateLimiter::try_acquire(Priority) {
  if (qps_ <= 0) return true;
  if (waiting() > 0) return false;
  refill();
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void RateLimiter::enqueue(Priority p, Grant grant) {
  const auto c = static_cast<std::size_t>(p);
  if (queues_[c].empty()) shares_.activate(c);
  const auto now = now_();
  queues_[c].push_back({now, std::move(grant)});
  waiting_now_.fetch_add(1, std::memory_order_relaxed);
  note_oldest(now);
}

std::optional<RateLimiter::Clock::duration> RateLimiter::poll() {
  refill();
  for (;;) {
    std::array<bool, kPriorityCount> nonempty{};
    for (std::size_t c = 0; c < kPriorityCount; ++c) nonempty[c] = !queues_[c].empty();
    const auto next = shares_.pick(nonempty);
    if (!next) break;
    if (qps_ > 0 && tokens_ < 1.0) {
      note_oldest(last_);
      double missing = 1.0 - tokens_;
      auto wait = std::chrono::duration<double>(missing / qps_);
      return std::max<Clock::duration>(
          std::chrono::duration_cast<Clock::duration>(wait) + Clock::duration(1),
          Clock::duration(1));
    }
    if (qps_ > 0) tokens_ -= 1.0;
    auto& q = queues_[*next];
    Grant g = std::move(q.front().grant);
    q.pop_front();
    shares_.charge(*next);
    waiting_now_.fetch_sub(1, std::memory_order_relaxed);
    g();  // may enqueue more; the next round sees them
  }
  note_oldest(last_);
  return std::nullopt;
}

}  // namespace edgehub::kube

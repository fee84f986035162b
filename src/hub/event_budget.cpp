#include <edgehub/hub/event_budget.hpp>

#include <algorithm>
#include <iterator>

namespace edgehub::hub {

namespace {

constexpr auto kLogEvery = std::chrono::minutes(1);

}  // namespace

EventBudget::EventBudget(double qps, double burst, Now now)
    : qps_(qps), burst_(std::max(1.0, burst)), now_(std::move(now)) {}

void EventBudget::refill(Bucket& b, Clock::time_point now) const {
  if (now <= b.last) return;
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  b.tokens = std::min(burst_, b.tokens + elapsed * qps_);
  b.last = now;
}

EventBudget::Verdict EventBudget::take(const std::string& node) {
  if (qps_ <= 0) return {};
  const auto now = now_();
  if (buckets_.size() >= prune_at_) prune(now);
  auto [it, added] = buckets_.try_emplace(node);
  Bucket& b = it->second;
  if (added) {
    b.tokens = burst_;
    b.last = now;
    b.logged = now - kLogEvery;
  }
  refill(b, now);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return {};
  }
  ++b.dropped;
  Verdict v{.allowed = false};
  if (now - b.logged >= kLogEvery) {
    v.report_dropped = b.dropped;
    b.dropped = 0;
    b.logged = now;
  }
  return v;
}

// A full bucket is the same as no bucket, unless drops wait for their log line.
void EventBudget::prune(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    refill(it->second, now);
    const bool idle = it->second.tokens >= burst_ && it->second.dropped == 0;
    it = idle ? buckets_.erase(it) : std::next(it);
  }
  prune_at_ = std::max<std::size_t>(1024, 2 * buckets_.size());
}

}  // namespace edgehub::hub

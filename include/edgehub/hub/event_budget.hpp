#pragma once
// EventBudget: how many events each node may record, as the kubelet's own client-side limit
// (KubeletConfiguration eventRecordQPS 50, eventBurst 100): one token bucket per node. Events
// beyond it are dropped, as the kubelet's recorder drops them, and counted; a log line names
// the node at most once a minute with the number dropped since the last one.
//
// Buckets of nodes that went quiet are pruned once they are full again, so the map holds
// about the nodes that sent an event within the last burst/qps seconds. API thread only.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

namespace edgehub::hub {

class EventBudget {
 public:
  using Clock = std::chrono::steady_clock;
  using Now = std::function<Clock::time_point()>;

  // qps 0: no limit.
  EventBudget(double qps, double burst, Now now = &Clock::now);

  struct Verdict {
    bool allowed = true;
    // Set on a drop when a log line is due: events of the node dropped since the last line.
    std::uint64_t report_dropped = 0;
  };
  Verdict take(const std::string& node);
  std::size_t nodes() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
    std::uint64_t dropped = 0;  // since the last log line
    Clock::time_point logged{};
  };
  void refill(Bucket& b, Clock::time_point now) const;
  void prune(Clock::time_point now);

  double qps_;
  double burst_;
  Now now_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::size_t prune_at_ = 1024;
};

}  // namespace edgehub::hub

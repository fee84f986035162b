#pragma once
// FairQueue: edge requests waiting for one of Upstream's slots. Between request classes the
// budget is shared by kube::ClassShares (leases get the most, none starves); inside a class
// the nodes take turns (round-robin), and a node with `per_node_in_progress` requests already
// in progress waits until one of them ends. So one edge flooding requests delays another
// edge's lease renewal by at most one of its own requests per turn, and holds at most
// `per_node_in_progress` of the slots (and of the rate limiter's queue behind them).

#include <edgehub/kube/rate_limiter.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace edgehub::hub {

template <class Item>
class FairQueue {
 public:
  explicit FairQueue(std::size_t per_node_in_progress)
      : cap_(std::max<std::size_t>(1, per_node_in_progress)) {}

  struct Next {
    std::string node;
    Item item;
  };

  // Whether a request of `node` may start without waiting: no waiting request could start
  // instead, and the node is below its share of slots.
  bool may_start(const std::string& node) const {
    if (runnable()) return false;
    const auto it = flows_.find(node);
    return it == flows_.end() || it->second.in_progress < cap_;
  }
  // A request of `node` started without waiting (after may_start).
  void started(const std::string& node) {
    auto& f = flow(node);
    ++f.in_progress;
    if (f.in_progress >= cap_) leave_rings(f);
  }
  void push(const std::string& node, kube::Priority p, Item item, std::size_t bytes) {
    const auto c = static_cast<std::size_t>(p);
    auto& f = flow(node);
    f.queued[c].push_back({std::move(item), bytes});
    ++f.waiting;
    ++waiting_;
    bytes_ += bytes;
    if (f.queued[c].size() == 1 && f.in_progress < cap_) enter_ring(f, c);
  }
  // The next request to start, now counted as in progress; nullopt when none may start.
  std::optional<Next> pop() {
    std::array<bool, kube::kPriorityCount> nonempty{};
    for (std::size_t c = 0; c < kube::kPriorityCount; ++c) nonempty[c] = !rings_[c].empty();
    const auto c = shares_.pick(nonempty);
    if (!c) return std::nullopt;
    Flow& f = *rings_[*c].front();
    rings_[*c].pop_front();
    f.in_ring[*c].reset();
    Entry e = std::move(f.queued[*c].front());
    f.queued[*c].pop_front();
    --f.waiting;
    --waiting_;
    bytes_ -= e.bytes;
    ++f.in_progress;
    shares_.charge(*c);
    if (f.in_progress >= cap_) {
      leave_rings(f);
    } else if (!f.queued[*c].empty()) {
      enter_ring(f, *c);  // behind the other nodes of the class
    }
    return Next{*f.name, std::move(e.item)};
  }
  // A request of `node` ended.
  void finished(const std::string& node) {
    const auto it = flows_.find(node);
    if (it == flows_.end()) return;
    Flow& f = it->second;
    if (f.in_progress > 0) --f.in_progress;
    if (f.in_progress + 1 == cap_) {
      for (std::size_t c = 0; c < kube::kPriorityCount; ++c) {
        if (!f.queued[c].empty() && !f.in_ring[c]) enter_ring(f, c);
      }
    }
    if (f.in_progress == 0 && f.waiting == 0) flows_.erase(it);
  }

  std::size_t waiting() const { return waiting_; }
  std::size_t waiting_bytes() const { return bytes_; }
  std::size_t waiting(const std::string& node) const {
    const auto it = flows_.find(node);
    return it == flows_.end() ? 0 : it->second.waiting;
  }
  std::size_t in_progress(const std::string& node) const {
    const auto it = flows_.find(node);
    return it == flows_.end() ? 0 : it->second.in_progress;
  }
  std::size_t nodes() const { return flows_.size(); }

 private:
  struct Entry {
    Item item;
    std::size_t bytes;
  };
  struct Flow;
  using Ring = std::list<Flow*>;
  // One node's waiting requests by class. It is in a class's ring exactly when it has
  // requests of that class waiting and is below its cap.
  struct Flow {
    const std::string* name = nullptr;
    std::array<std::deque<Entry>, kube::kPriorityCount> queued;
    std::array<std::optional<typename Ring::iterator>, kube::kPriorityCount> in_ring;
    std::size_t in_progress = 0;
    std::size_t waiting = 0;
  };

  bool runnable() const {
    return std::any_of(rings_.begin(), rings_.end(), [](const Ring& r) { return !r.empty(); });
  }
  Flow& flow(const std::string& node) {
    auto [it, added] = flows_.try_emplace(node);
    if (added) it->second.name = &it->first;  // keys of an unordered_map never move
    return it->second;
  }
  void enter_ring(Flow& f, std::size_t c) {
    if (rings_[c].empty()) shares_.activate(c);
    f.in_ring[c] = rings_[c].insert(rings_[c].end(), &f);
  }
  void leave_rings(Flow& f) {
    for (std::size_t c = 0; c < kube::kPriorityCount; ++c) {
      if (!f.in_ring[c]) continue;
      rings_[c].erase(*f.in_ring[c]);
      f.in_ring[c].reset();
    }
  }

  const std::size_t cap_;
  std::unordered_map<std::string, Flow> flows_;
  std::array<Ring, kube::kPriorityCount> rings_;
  kube::ClassShares shares_;
  std::size_t waiting_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace edgehub::hub

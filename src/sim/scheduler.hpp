#pragma once
// One timer per worker: a binary heap of callbacks under a single steady_timer. Cheaper than
// three steady_timers per node and never cancelled: callbacks check their node's epoch.

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace edgehub::sim {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Scheduler(boost::asio::io_context& ioc) : timer_(ioc) {}

  void at(Clock::time_point due, std::function<void()> fn) {
    heap_.push_back(Entry{due, seq_++, std::move(fn)});
    std::push_heap(heap_.begin(), heap_.end(), Later{});
    if (!stopped_ && due < armed_) arm(due);
  }
  template <class Rep, class Period>
  void after(std::chrono::duration<Rep, Period> delay, std::function<void()> fn) {
    at(Clock::now() + std::chrono::duration_cast<Clock::duration>(delay), std::move(fn));
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    heap_.clear();
  }
  std::size_t size() const { return heap_.size(); }

 private:
  struct Entry {
    Clock::time_point due;
    std::uint64_t seq;
    std::function<void()> fn;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.due != b.due ? a.due > b.due : a.seq > b.seq;
    }
  };

  void arm(Clock::time_point due) {
    armed_ = due;
    timer_.expires_at(due);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopped_) return;  // re-armed earlier, or stopping
      armed_ = Clock::time_point::max();
      fire();
    });
  }
  void fire() {
    const auto now = Clock::now();
    while (!heap_.empty() && heap_.front().due <= now && !stopped_) {
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      Entry entry = std::move(heap_.back());
      heap_.pop_back();
      entry.fn();
    }
    // The connect burst leaves a handshake-timeout entry per node; give that capacity back.
    if (heap_.capacity() > 1024 && heap_.size() < heap_.capacity() / 4) heap_.shrink_to_fit();
    if (!heap_.empty() && !stopped_) arm(heap_.front().due);
  }

  boost::asio::steady_timer timer_;
  std::vector<Entry> heap_;
  std::uint64_t seq_ = 0;
  Clock::time_point armed_ = Clock::time_point::max();
  bool stopped_ = false;
};

}  // namespace edgehub::sim

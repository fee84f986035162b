#pragma once
// Counters, gauges and histograms with Prometheus text exposition (format 0.0.4).
//
// Updates are lock-free atomics, safe from any I/O thread. Looking up a labelled child takes
// a lock: do it once (at session start, per operation kind) and keep the reference — children
// live as long as the Registry.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace edgehub::metrics {

using Labels = std::vector<std::string>;  // values, in the order of the family's label names

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v) {
    double cur = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
    }
  }
  void inc() { add(1); }
  void dec() { add(-1); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);
  const std::vector<double>& upper_bounds() const { return bounds_; }
  // Cumulative counts per bound, then +Inf; and the sum.
  std::vector<std::uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  std::uint64_t count() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // one per bound, plus +Inf
  std::atomic<double> sum_{0};
};

// Bucket bounds for latencies in seconds: 100 µs … 10 s.
std::vector<double> latency_buckets();

template <class Metric>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<Metric>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}
  // The child for these label values (created on first use).
  Metric& with(const Labels& values);
  const std::vector<std::string>& label_names() const { return label_names_; }
  template <class Visit>
  void each(Visit visit) const {
    std::lock_guard lock(mutex_);
    for (const auto& [labels, metric] : children_) visit(labels, *metric);
  }

 private:
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Metric>()> make_;
  mutable std::mutex mutex_;
  std::map<Labels, std::unique_ptr<Metric>> children_;
};

class Registry {
 public:
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               std::vector<double> buckets,
                               std::vector<std::string> label_names = {});
  // A gauge computed at scrape time (connection counts, queue depths, RSS).
  void gauge_callback(const std::string& name, const std::string& help,
                      std::function<double()> read);

  // Prometheus text exposition format, families in registration order.
  std::string expose() const;

 private:
  enum class Type { counter, gauge, histogram, gauge_callback };
  struct Entry {
    std::string name;
    std::string help;
    Type type;
    std::size_t index;
  };
  void add(const std::string& name, const std::string& help, Type type, std::size_t index);

  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
  std::deque<Family<Counter>> counters_;
  std::deque<Family<Gauge>> gauges_;
  std::deque<Family<Histogram>> histograms_;
  std::deque<std::function<double()>> callbacks_;
};

}  // namespace edgehub::metrics

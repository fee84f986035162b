#include <edgehub/metrics/metrics.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace edgehub::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  std::sort(bounds_.begin(), bounds_.end());
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0);
}

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  counts_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::vector<std::uint64_t> Histogram::cumulative_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

std::uint64_t Histogram::count() const { return cumulative_counts().back(); }

std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
}

template <class Metric>
Metric& Family<Metric>::with(const Labels& values) {
  if (values.size() != label_names_.size()) {
    throw std::logic_error("metric family takes " + std::to_string(label_names_.size()) +
                           " label values, got " + std::to_string(values.size()));
  }
  std::lock_guard lock(mutex_);
  auto& slot = children_[values];
  if (!slot) slot = make_();
  return *slot;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::add(const std::string& name, const std::string& help, Type type,
                   std::size_t index) {
  for (const auto& e : entries_) {
    if (e.name == name) throw std::logic_error("metric " + name + " registered twice");
  }
  entries_.push_back({name, help, type, index});
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  add(name, help, Type::counter, counters_.size());
  return counters_.emplace_back(std::move(label_names),
                                [] { return std::make_unique<Counter>(); });
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  add(name, help, Type::gauge, gauges_.size());
  return gauges_.emplace_back(std::move(label_names), [] { return std::make_unique<Gauge>(); });
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<double> buckets,
                                       std::vector<std::string> label_names) {
  std::lock_guard lock(mutex_);
  add(name, help, Type::histogram, histograms_.size());
  return histograms_.emplace_back(std::move(label_names), [buckets] {
    return std::make_unique<Histogram>(buckets);
  });
}

void Registry::gauge_callback(const std::string& name, const std::string& help,
                              std::function<double()> read) {
  std::lock_guard lock(mutex_);
  add(name, help, Type::gauge_callback, callbacks_.size());
  callbacks_.push_back(std::move(read));
}

namespace {

std::string escape(const std::string& text, bool quote) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);  // shortest round-trip form
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

std::string label_set(const std::vector<std::string>& names, const Labels& values,
                      const std::string& extra = {}) {
  if (names.empty() && extra.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ",";
    out += names[i] + "=\"" + escape(values[i], true) + "\"";
  }
  if (!extra.empty()) out += (names.empty() ? "" : ",") + extra;
  return out + "}";
}

}  // namespace

std::string Registry::expose() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const auto& e : entries_) {
    const char* type = e.type == Type::counter     ? "counter"
                       : e.type == Type::histogram ? "histogram"
                                                   : "gauge";
    out << "# HELP " << e.name << " " << escape(e.help, false) << "\n";
    out << "# TYPE " << e.name << " " << type << "\n";
    switch (e.type) {
      case Type::counter: {
        const auto& f = counters_[e.index];
        f.each([&](const Labels& l, const Counter& c) {
          out << e.name << label_set(f.label_names(), l) << " " << c.value() << "\n";
        });
        break;
      }
      case Type::gauge: {
        const auto& f = gauges_[e.index];
        f.each([&](const Labels& l, const Gauge& g) {
          out << e.name << label_set(f.label_names(), l) << " " << number(g.value()) << "\n";
        });
        break;
      }
      case Type::histogram: {
        const auto& f = histograms_[e.index];
        f.each([&](const Labels& l, const Histogram& h) {
          const auto counts = h.cumulative_counts();
          const auto& bounds = h.upper_bounds();
          for (std::size_t i = 0; i < counts.size(); ++i) {
            const std::string le =
                "le=\"" + (i < bounds.size() ? number(bounds[i]) : std::string("+Inf")) + "\"";
            out << e.name << "_bucket" << label_set(f.label_names(), l, le) << " " << counts[i]
                << "\n";
          }
          out << e.name << "_sum" << label_set(f.label_names(), l) << " " << number(h.sum())
              << "\n";
          out << e.name << "_count" << label_set(f.label_names(), l) << " " << counts.back()
              << "\n";
        });
        break;
      }
      case Type::gauge_callback:
        out << e.name << " " << number(callbacks_[e.index]()) << "\n";
        break;
    }
  }
  return out.str();
}

}  // namespace edgehub::metrics

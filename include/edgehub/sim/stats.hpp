#pragma once
// Counters and latency histograms of the simulator. Written by I/O threads with relaxed
// atomics, read by the control thread for the progress line and the report.

#include <array>
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>

namespace edgehub::sim {

// Log-linear histogram of microsecond values: 16 sub-buckets per power of two (≤ 6.25 %
// error), 0 µs … ~2^40 µs. Lock-free recording; percentiles from a merged snapshot.
class Histogram {
 public:
  static constexpr int kSub = 16;
  static constexpr int kBuckets = kSub + 40 * kSub;

  void record(std::int64_t micros);
  void merge_into(std::array<std::uint64_t, kBuckets>& out) const;

  static int bucket_of(std::int64_t micros);
  static std::int64_t lower_bound_of(int bucket);

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
};

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
  static LatencySummary from(const std::array<std::uint64_t, Histogram::kBuckets>& counts);
};

// Per I/O thread.
struct WorkerStats {
  std::atomic<std::int64_t> connected{0};
  std::atomic<std::uint64_t> connects{0};  // successful WebSocket upgrades
  std::atomic<std::uint64_t> reconnects{0};  // connects after the node's first
  std::atomic<std::uint64_t> connect_failures{0};
  std::atomic<std::uint64_t> disconnects{0};
  std::atomic<std::uint64_t> msgs_in{0};
  std::atomic<std::uint64_t> msgs_out{0};
  std::atomic<std::uint64_t> acks_sent{0};
  std::atomic<std::uint64_t> acks_dropped{0};  // --drop-acks
  std::atomic<std::uint64_t> decode_errors{0};
  std::atomic<std::uint64_t> request_timeouts{0};
  std::atomic<std::uint64_t> request_errors{0};  // responses carrying Err / StatusError
  std::atomic<std::uint64_t> objects_received{0};
  std::atomic<std::uint64_t> joins{0};              // certificates got with the token
  std::atomic<std::uint64_t> rotations{0};          // certificates renewed before expiry
  std::atomic<std::uint64_t> rotation_failures{0};
  // steady_clock nanoseconds of the first dial and of the latest successful upgrade
  std::atomic<std::int64_t> first_dial_ns{0};
  std::atomic<std::int64_t> last_connect_ns{0};
  Histogram downstream;  // edgehub.io/stamp → receipt
  Histogram upstream;    // request → its response
  Histogram connect_time;  // dial → 101
};

struct StatsSnapshot {
  std::uint64_t target = 0;
  std::int64_t connected = 0;
  std::uint64_t connects = 0, reconnects = 0, connect_failures = 0, disconnects = 0;
  std::uint64_t msgs_in = 0, msgs_out = 0, acks_sent = 0, acks_dropped = 0;
  std::uint64_t decode_errors = 0, request_timeouts = 0, request_errors = 0;
  std::uint64_t objects_received = 0;
  std::uint64_t joins = 0, rotations = 0, rotation_failures = 0;
  std::int64_t first_dial_ns = 0, last_connect_ns = 0;
  LatencySummary downstream, upstream, connect_time;

  void add(const WorkerStats& w);
  nlohmann::json to_json() const;
};

}  // namespace edgehub::sim

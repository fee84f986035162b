#include <algorithm>
#include <bit>
#include <edgehub/sim/stats.hpp>

namespace edgehub::sim {

int Histogram::bucket_of(std::int64_t micros) {
  if (micros < kSub) return micros < 0 ? 0 : static_cast<int>(micros);
  const auto v = static_cast<std::uint64_t>(micros);
  const int msb = 63 - std::countl_zero(v);  // ≥ 4
  const int sub = static_cast<int>((v >> (msb - 4)) & (kSub - 1));
  const int bucket = kSub + (msb - 4) * kSub + sub;
  return bucket < kBuckets ? bucket : kBuckets - 1;
}

std::int64_t Histogram::lower_bound_of(int bucket) {
  if (bucket < kSub) return bucket;
  const int msb = (bucket - kSub) / kSub + 4;
  const int sub = (bucket - kSub) % kSub;
  return static_cast<std::int64_t>((static_cast<std::uint64_t>(kSub + sub)) << (msb - 4));
}

void Histogram::record(std::int64_t micros) {
  counts_[static_cast<std::size_t>(bucket_of(micros))].fetch_add(1, std::memory_order_relaxed);
}

void Histogram::merge_into(std::array<std::uint64_t, kBuckets>& out) const {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] += counts_[i].load(std::memory_order_relaxed);
}

LatencySummary LatencySummary::from(const std::array<std::uint64_t, Histogram::kBuckets>& counts) {
  LatencySummary s;
  for (auto c : counts) s.count += c;
  if (s.count == 0) return s;
  auto at = [&](double q) {
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(s.count - 1)) + 1;
    std::uint64_t seen = 0;
    for (int b = 0; b < Histogram::kBuckets; ++b) {
      seen += counts[static_cast<std::size_t>(b)];
      if (seen >= rank) return static_cast<double>(Histogram::lower_bound_of(b)) / 1000.0;
    }
    return 0.0;
  };
  s.p50_ms = at(0.50);
  s.p90_ms = at(0.90);
  s.p99_ms = at(0.99);
  s.max_ms = at(1.0);
  return s;
}

void StatsSnapshot::add(const WorkerStats& w) {
  auto ld = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  connected += ld(w.connected);
  connects += ld(w.connects);
  reconnects += ld(w.reconnects);
  connect_failures += ld(w.connect_failures);
  disconnects += ld(w.disconnects);
  msgs_in += ld(w.msgs_in);
  msgs_out += ld(w.msgs_out);
  acks_sent += ld(w.acks_sent);
  acks_dropped += ld(w.acks_dropped);
  decode_errors += ld(w.decode_errors);
  request_timeouts += ld(w.request_timeouts);
  request_errors += ld(w.request_errors);
  objects_received += ld(w.objects_received);
  joins += ld(w.joins);
  rotations += ld(w.rotations);
  rotation_failures += ld(w.rotation_failures);
  const auto first = ld(w.first_dial_ns);
  if (first != 0 && (first_dial_ns == 0 || first < first_dial_ns)) first_dial_ns = first;
  last_connect_ns = std::max(last_connect_ns, ld(w.last_connect_ns));
}

namespace {
nlohmann::json latency_json(const LatencySummary& s) {
  return {{"count", s.count}, {"p50_ms", s.p50_ms}, {"p90_ms", s.p90_ms},
          {"p99_ms", s.p99_ms}, {"max_ms", s.max_ms}};
}
}  // namespace

nlohmann::json StatsSnapshot::to_json() const {
  // Connect rate over the window from the first dial to the latest upgrade.
  const double window =
      last_connect_ns > first_dial_ns ? static_cast<double>(last_connect_ns - first_dial_ns) / 1e9
                                      : 0.0;
  return {{"connect_window_s", window},
          {"connect_rate_per_s", window > 0 ? static_cast<double>(connects) / window : 0.0},{"target", target},
          {"connected", connected},
          {"connects", connects},
          {"reconnects", reconnects},
          {"connect_failures", connect_failures},
          {"disconnects", disconnects},
          {"msgs_in", msgs_in},
          {"msgs_out", msgs_out},
          {"acks_sent", acks_sent},
          {"acks_dropped", acks_dropped},
          {"decode_errors", decode_errors},
          {"request_timeouts", request_timeouts},
          {"request_errors", request_errors},
          {"objects_received", objects_received},
          {"joins", joins},
          {"rotations", rotations},
          {"rotation_failures", rotation_failures},
          {"downstream_latency", latency_json(downstream)},
          {"upstream_rtt", latency_json(upstream)},
          {"connect_time", latency_json(connect_time)}};
}

}  // namespace edgehub::sim

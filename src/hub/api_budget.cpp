#include <edgehub/hub/api_budget.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace edgehub::hub {

namespace {

constexpr std::array<const char*, kube::kPriorityCount> kClassNames{"lease", "status", "nodesync",
                                                                    "bulk"};

}  // namespace

double fleet_share(double fleet_qps, double replica_qps, std::size_t mine,
                   const std::vector<std::size_t>& others) {
  const double interval = static_cast<double>(kLeaseRenewInterval.count());
  double total = static_cast<double>(mine);
  for (const auto n : others) total += static_cast<double>(n);
  const double replicas = static_cast<double>(others.size() + 1);
  const double renewals = total / interval;
  double share = 0;
  if (renewals >= fleet_qps) {
    share = total > 0 ? fleet_qps * static_cast<double>(mine) / total : fleet_qps / replicas;
  } else {
    share = static_cast<double>(mine) / interval + (fleet_qps - renewals) / replicas;
  }
  return std::min(replica_qps, std::max(share, 0.1));
}

std::optional<std::string> budget_shortfall(const BudgetView& v) {
  if (v.qps <= 0) return std::nullopt;
  const double lease_writes = static_cast<double>(v.nodes) /
                              static_cast<double>(kLeaseRenewInterval.count());
  const bool leases_exceed = lease_writes >= v.qps;
  const bool falls_behind =
      v.oldest_wait_seconds >= static_cast<double>(kSaturatedWait.count());
  if (!leases_exceed && !falls_behind) return std::nullopt;
  return fmt::format(
      "{} {:g} cannot keep up: leases of {} nodes need {:g} writes/s (one per node every "
      "{} s) besides registration, status and NodeSync; {} API requests waiting, the oldest for "
      "{:.1f} s; {}",
      v.fleet ? "this replica's share of kube.fleetQps," : "kube.qps", v.qps, v.nodes,
      lease_writes, kLeaseRenewInterval.count(), v.waiting, v.oldest_wait_seconds,
      v.fleet ? "raise kube.fleetQps (at least edges / 5 for the whole fleet), or kube.qps if "
                "the share is capped by it"
              : "raise kube.qps (and kube.burst), or spread the edges over more replicas");
}

ApiBudget::ApiBudget(boost::asio::any_io_executor ex, const kube::RateLimiter& limiter,
                     metrics::Registry& registry, std::function<std::size_t()> nodes,
                     std::chrono::milliseconds period)
    : timer_(ex),
      limiter_(limiter),
      nodes_(std::move(nodes)),
      period_(period),
      saturated_(registry
                     .gauge("edgehub_api_budget_saturated",
                            "1 when kube.qps cannot serve the replica's edges: their Lease "
                            "renewals alone need it, or API requests waited 10 s or more.")
                     .with({})),
      qps_(registry
               .gauge("edgehub_api_qps",
                      "The client-side API request rate in force: kube.qps, or this replica's "
                      "share of kube.fleetQps.")
               .with({})),
      oldest_(registry.gauge("edgehub_api_oldest_waiting_seconds",
                             "How long the oldest request waiting in the client-side rate "
                             "limiter has waited, by class (lease, status, nodesync, bulk).",
                             {"class"})) {}

void ApiBudget::start() { schedule(); }

void ApiBudget::stop() {
  stopped_ = true;
  timer_.cancel();
}

void ApiBudget::schedule() {
  if (stopped_) return;
  timer_.expires_after(period_);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    check();
    schedule();
  });
}

void ApiBudget::check() {
  BudgetView v{.qps = limiter_.qps(), .fleet = fleet_, .nodes = nodes_(), .waiting = limiter_.waiting()};
  qps_.set(v.qps);
  for (std::size_t c = 0; c < kube::kPriorityCount; ++c) {
    const double age = limiter_.oldest_wait_seconds(static_cast<kube::Priority>(c));
    oldest_.with({kClassNames[c]}).set(age);
    v.oldest_wait_seconds = std::max(v.oldest_wait_seconds, age);
  }
  const auto shortfall = budget_shortfall(v);
  saturated_.set(shortfall ? 1.0 : 0.0);
  if (!shortfall) return;
  const auto now = std::chrono::steady_clock::now();
  if (last_warned_ != std::chrono::steady_clock::time_point{} &&
      now - last_warned_ < std::chrono::minutes(1)) {
    return;
  }
  last_warned_ = now;
  spdlog::warn("{}", *shortfall);
}

}  // namespace edgehub::hub

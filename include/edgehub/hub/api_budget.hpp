#pragma once
// ApiBudget: whether the replica's client-side API budget (kube.qps) keeps up with its edges.
// Every edge renews its Lease every 10 s, so N connected edges need N / 10 writes per second
// before anything else (registration, status, NodeSync, resyncs). When the budget cannot
// serve that, or requests wait long in the rate limiter, the replica says so: a warning
// naming the setting to raise (at most once a minute) and the gauges
// edgehub_api_budget_saturated and edgehub_api_oldest_waiting_seconds{class}.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <edgehub/kube/rate_limiter.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::hub {

// The interval edgecore renews its node's Lease at (its default; the sizing assumes it).
inline constexpr std::chrono::seconds kLeaseRenewInterval{10};
// Requests waiting longer than this in the rate limiter mean the budget falls behind.
inline constexpr std::chrono::seconds kSaturatedWait{10};

// This replica's part of a fleet-wide budget (kube.fleetQps) that the live replicas share:
// the Lease renewals of its own edges (one per edge every 10 s) plus an equal part of what the
// fleet's renewals leave, never more than `replica_qps` (kube.qps). When the fleet's renewals
// alone exceed the budget, the parts are proportional to the replicas' edges. `mine` is this
// replica's edge count, `others` the other live replicas' (from their membership Leases).
double fleet_share(double fleet_qps, double replica_qps, std::size_t mine,
                   const std::vector<std::size_t>& others);

struct BudgetView {
  double qps = 0;                 // the rate in force: kube.qps or a share of kube.fleetQps
  bool fleet = false;             // a share of kube.fleetQps
  std::size_t nodes = 0;          // edges connected to the replica
  std::size_t waiting = 0;        // requests waiting in the rate limiter
  double oldest_wait_seconds = 0; // the longest any of them waited
};

// The warning to give for `v`, or nullopt when the budget keeps up.
std::optional<std::string> budget_shortfall(const BudgetView& v);

class ApiBudget {
 public:
  // `limiter` lives on `ex` (the API thread), where the checks run; `nodes` counts the
  // replica's sessions.
  ApiBudget(boost::asio::any_io_executor ex, const kube::RateLimiter& limiter,
            metrics::Registry& registry, std::function<std::size_t()> nodes,
            std::chrono::milliseconds period = std::chrono::seconds(1));
  // The limiter's rate is this replica's share of kube.fleetQps (the warning names it).
  void fleet_budget(bool on) { fleet_ = on; }
  void start();
  void stop();
  // One check (the timer's; tests call it directly).
  void check();

 private:
  void schedule();

  boost::asio::steady_timer timer_;
  const kube::RateLimiter& limiter_;
  std::function<std::size_t()> nodes_;
  std::chrono::milliseconds period_;
  bool fleet_ = false;
  metrics::Gauge& saturated_;
  metrics::Gauge& qps_;
  metrics::Family<metrics::Gauge>& oldest_;
  std::chrono::steady_clock::time_point last_warned_{};
  bool stopped_ = false;
};

}  // namespace edgehub::hub

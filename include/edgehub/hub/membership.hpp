#pragma once
// Membership: each replica holds one coordination.k8s.io/v1 Lease in its namespace, named after
// its identity (hub.id), labelled edgehub.io/replica=true, carrying its address, its connection
// count and its readiness, renewed every few seconds. Reading every replica's Lease gives the
// fleet view that rebalancing needs and that `edgehub status` prints. A replica that drains
// deletes its Lease last; a replica that died simply stops renewing (and stops counting once
// its Lease expired).
//
// Runs on the API thread.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <edgehub/kube/client.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::hub {

inline constexpr std::string_view kReplicaLabel = "edgehub.io/replica";

struct ReplicaInfo {
  std::string name;
  std::string address;
  std::size_t connections = 0;
  bool ready = false;
  std::string renew_time;             // as written (RFC 3339 with microseconds)
  std::chrono::seconds age{0};        // since the last renewal
  std::chrono::seconds lease_duration{30};
  bool live() const { return age <= lease_duration; }
};

// Every replica's Lease in `ns` (label edgehub.io/replica=true), sorted by name.
boost::asio::awaitable<kube::Result<std::vector<ReplicaInfo>>> list_replicas(kube::Client& client,
                                                                            std::string ns);

// Connections this replica should shed now: above the live fleet's average by more than
// `tolerance` (a fraction), shed down to the average (never below), at most `per_round`.
// None while the replica is busy with a (re)connecting fleet — `backlog` counts the API
// requests waiting in its rate limiter and the edge connections not yet sessions: every moved
// edge would register again behind the others (a chain of slow round trips that took
// handed-off edges' Leases past 40 s), and the counts are still moving.
std::size_t rebalance_surplus(std::size_t mine, const std::vector<std::size_t>& live_counts,
                              double tolerance, std::size_t per_round, std::size_t backlog = 0);

// MicroTime for leases: 2026-11-27T05:00:00.123456Z.
std::string micro_time_now();
// Seconds since the epoch of an RFC 3339 time; nullopt when unreadable.
std::optional<std::int64_t> parse_rfc3339(std::string_view text);

struct MembershipOptions {
  std::string replica;
  std::string ns;
  std::string address;
  std::chrono::milliseconds renew_interval{10'000};
  std::chrono::seconds lease_duration{30};
};

class Membership {
 public:
  using Connections = std::function<std::size_t()>;
  using Ready = std::function<bool()>;
  // Called after each renewal with the live fleet (this replica included).
  using OnFleet = std::function<void(const std::vector<ReplicaInfo>&)>;

  Membership(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
             MembershipOptions options, Connections connections, Ready ready, OnFleet on_fleet);
  ~Membership();
  void start();
  void stop();
  // Deletes this replica's Lease (end of a drain), so the others stop counting it.
  boost::asio::awaitable<void> leave();

 private:
  boost::asio::awaitable<void> renew();
  boost::asio::awaitable<void> renew_once();
  void schedule(std::chrono::milliseconds after);
  std::string lease_json() const;

  std::shared_ptr<kube::Client> client_;
  MembershipOptions options_;
  Connections connections_;
  Ready ready_;
  OnFleet on_fleet_;
  std::string resource_version_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = false;
  bool renewing_ = false;
  metrics::Family<metrics::Counter>& renewals_;
  metrics::Gauge& fleet_replicas_;
  metrics::Gauge& fleet_connections_;
};

}  // namespace edgehub::hub

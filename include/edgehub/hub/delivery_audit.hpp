#pragma once
// DeliveryAudit: the safety net that cannot lose a delivery silently. Runs on the API thread.
//
// - Sessions that stay *not owning* (their NodeSync claim never confirmed) for longer than
//   `not_owning_after` while connected are logged at warning level, counted
//   (edgehub_sessions_not_owning_total) and claimed again: an open session that never owns
//   its node drops every change for it.
// - Every owned node's pods, as the API lists them (field selector spec.nodeName, served from
//   the API server's watch cache: resourceVersion=0), are compared with what the node's
//   NodeSync record says its edge ACKed. A pod (not terminal) whose version the edge has not
//   ACKed — nor an older version seen undelivered by an earlier audit — within `grace` is
//   sent again through the normal path, logged at warning level with node and pod, and
//   counted in edgehub_delivery_repairs_total. That counter stays 0 unless something lost a
//   change; every e2e scenario checks it.
//
// Cost: one LIST per owned node per `interval`, spread evenly over it, at the bulk priority,
// never more than `max_lists_per_second` (a replica with 3,000 nodes and the defaults lists 10
// nodes a second and visits each node every 300 s).

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <edgehub/hub/node_sync.hpp>
#include <edgehub/hub/registry.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace edgehub::hub {

struct DeliveryAuditOptions {
  std::chrono::milliseconds interval{60'000};  // per node; 0: no pod audit
  std::chrono::milliseconds grace{30'000};
  std::chrono::milliseconds not_owning_after{5'000};
  double max_lists_per_second = 10;
  std::chrono::milliseconds tick{1'000};
};

class DeliveryAudit {
 public:
  // Sends `pod` (as listed) to `node` again through the normal path.
  using Repair = std::function<void(const std::string& node, const kube::Object& pod)>;
  // Claims the node again for the session (it stayed not owning).
  using Reclaim = std::function<void(const std::string& node, std::uint64_t session_id)>;

  DeliveryAudit(std::shared_ptr<kube::Client> client, Registry& registry, NodeSync* node_sync,
                metrics::Registry& metrics, DeliveryAuditOptions options, Repair repair,
                Reclaim reclaim);
  ~DeliveryAudit();

  void start();
  void stop();
  // One look at the sessions that are not owning (the tick calls it).
  void check_sessions();
  // Audits one node now (the tick calls it for the nodes due).
  boost::asio::awaitable<void> audit_node(std::string node);

 private:
  struct Undelivered {
    std::uint64_t version = 0;  // the oldest version seen undelivered
    std::chrono::steady_clock::time_point since;
  };
  void schedule();
  void audit_due();
  void start_round();
  void compare(const std::string& node, const kube::ObjectList& pods);

  std::shared_ptr<kube::Client> client_;
  Registry& registry_;
  NodeSync* node_sync_;
  DeliveryAuditOptions options_;
  Repair repair_;
  Reclaim reclaim_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool stopped_ = false;
  // Not-owning sessions already reported, by session id: when last.
  std::unordered_map<std::uint64_t, std::chrono::steady_clock::time_point> reported_;
  // Pods seen undelivered, by node then uid.
  std::unordered_map<std::string, std::map<std::string, Undelivered>> undelivered_;
  std::vector<std::string> round_;  // this round's owned nodes, in name order
  std::size_t next_ = 0;            // the next of round_ to audit
  double credit_ = 0;    // node audits owed to the schedule
  std::size_t running_ = 0;

  metrics::Counter& repairs_;
  metrics::Counter& audits_;
  metrics::Counter& audit_failures_;
  metrics::Counter& not_owning_;
};

}  // namespace edgehub::hub

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <edgehub/hub/delivery_audit.hpp>
#include <edgehub/hub/downstream.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace edgehub::hub {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

DeliveryAudit::DeliveryAudit(std::shared_ptr<kube::Client> client, Registry& registry,
                             NodeSync* node_sync, metrics::Registry& metrics,
                             DeliveryAuditOptions options, Repair repair, Reclaim reclaim)
    : client_(std::move(client)),
      registry_(registry),
      node_sync_(node_sync),
      options_(options),
      repair_(std::move(repair)),
      reclaim_(std::move(reclaim)),
      repairs_(metrics.counter("edgehub_delivery_repairs_total",
                               "Pods the delivery audit found not delivered to their owned node "
                               "within the grace period and sent again (should stay 0).")
                   .with({})),
      audits_(metrics.counter("edgehub_delivery_audits_total",
                              "Owned nodes whose pods the delivery audit compared with their "
                              "NodeSync record.")
                  .with({})),
      audit_failures_(metrics.counter("edgehub_delivery_audit_failures_total",
                                      "Delivery audits that could not list the node's pods.")
                          .with({})),
      not_owning_(metrics.counter("edgehub_sessions_not_owning_total",
                                  "Sessions found connected but not owning their node for "
                                  "longer than 5 s (claimed again; should stay 0).")
                      .with({})) {}

DeliveryAudit::~DeliveryAudit() { *alive_ = false; }

void DeliveryAudit::start() {
  timer_ = std::make_unique<asio::steady_timer>(client_->executor());
  schedule();
}

void DeliveryAudit::stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
}

void DeliveryAudit::schedule() {
  timer_->expires_after(options_.tick);
  timer_->async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_) return;
    check_sessions();
    audit_due();
    schedule();
  });
}

void DeliveryAudit::check_sessions() {
  const auto now = Clock::now();
  std::unordered_map<std::uint64_t, Clock::time_point> still;
  for (const auto& session : registry_.not_owning()) {
    const auto& node = session->node();
    if (now - session->opened_at() < options_.not_owning_after) continue;
    const auto id = session->id();
    const auto last = reported_.find(id);
    if (last != reported_.end() && now - last->second < options_.not_owning_after) {
      still.emplace(id, last->second);
      continue;
    }
    still.emplace(id, now);
    not_owning_.inc();
    const auto open = std::chrono::duration_cast<std::chrono::seconds>(now - session->opened_at());
    spdlog::warn("node {}: session {} from {} connected {} s but not owning the node (claim: "
                 "{}); claiming it again",
                 node, id, session->peer(), open.count(),
                 node_sync_ != nullptr ? node_sync_->claim_state(node) : "none");
    reclaim_(node, id);
  }
  reported_ = std::move(still);  // sessions gone or owning are forgotten
}

// Visits the owned nodes in name order, as many per tick as spreads them over the interval.
// The order is a snapshot taken at the start of each round (once per interval): a tick costs
// the nodes it audits, not a sort of every owned node.
void DeliveryAudit::audit_due() {
  if (options_.interval.count() <= 0 || node_sync_ == nullptr) return;
  const std::size_t nodes = registry_.size();
  if (nodes == 0) {
    credit_ = 0;
    return;
  }
  const double per_tick = static_cast<double>(nodes) *
                          std::chrono::duration<double>(options_.tick) /
                          std::chrono::duration<double>(options_.interval);
  const double cap = options_.max_lists_per_second *
                     std::chrono::duration<double>(options_.tick).count();
  credit_ = std::min(credit_ + std::min(per_tick, cap), std::max(cap, 1.0));
  bool new_round = false;
  while (credit_ >= 1.0 && running_ < static_cast<std::size_t>(std::max(cap, 1.0))) {
    if (next_ == round_.size()) {
      if (new_round) break;  // one snapshot per tick at most
      new_round = true;
      start_round();
      if (round_.empty()) break;
    }
    std::string node = std::move(round_[next_++]);
    if (!registry_.owns(node)) continue;  // gone since the round began
    credit_ -= 1.0;
    ++running_;
    asio::co_spawn(client_->executor(), audit_node(std::move(node)),
                   [this, alive = alive_](std::exception_ptr) {
                     if (*alive) --running_;
                   });
  }
}

// A new round: the owned nodes now, in name order; what is remembered of nodes no longer
// owned is forgotten.
void DeliveryAudit::start_round() {
  round_ = registry_.owned_nodes();
  next_ = 0;
  for (auto it = undelivered_.begin(); it != undelivered_.end();) {
    it = std::binary_search(round_.begin(), round_.end(), it->first) ? std::next(it)
                                                                      : undelivered_.erase(it);
  }
}

asio::awaitable<void> DeliveryAudit::audit_node(std::string node) {
  auto alive = alive_;
  kube::ListOptions by_node;
  by_node.field_selector = "spec.nodeName=" + node;
  by_node.resource_version = "0";  // the watch cache answers: no read from etcd
  auto pods = co_await client_->list(kube::resources::pods(), "", by_node);
  if (!*alive || stopped_) co_return;
  if (!pods) {
    audit_failures_.inc();
    spdlog::debug("node {}: delivery audit cannot list its pods: {}", node,
                  pods.error().describe());
    co_return;
  }
  audits_.inc();
  compare(node, *pods);
}

// A pod is delivered when the record shows its listed version (or a newer one) ACKed. One
// that is not is remembered with that version; when a later audit, `grace` on, finds not even
// that version ACKed, the pod is repaired.
void DeliveryAudit::compare(const std::string& node, const kube::ObjectList& pods) {
  const NodeSyncRecord* record = node_sync_->record(node);
  if (record == nullptr || !registry_.owns(node)) return;
  const auto now = Clock::now();
  auto& seen = undelivered_[node];
  std::map<std::string, Undelivered> next;
  for (const auto& pod : pods.items) {
    const auto doc = pod.json();
    const auto phase = doc.is_object() ? doc.value(nlohmann::json::json_pointer("/status/phase"), std::string())
                                       : std::string();
    if (phase == "Succeeded" || phase == "Failed") continue;
    const auto version = resource_version_number(pod.meta.resource_version);
    const auto held = record->objects.find(pod.meta.uid);
    const auto acked = held == record->objects.end() ? 0 : held->second.acked_version;
    if (acked != 0 && acked >= version) continue;
    const auto before = seen.find(pod.meta.uid);
    if (before == seen.end() || acked >= before->second.version) {
      next[pod.meta.uid] = Undelivered{version, now};  // new, or progress since
      continue;
    }
    if (now - before->second.since < options_.grace) {
      next[pod.meta.uid] = before->second;
      continue;
    }
    repairs_.inc();
    spdlog::warn("node {}: pod {}/{} (uid {}, resourceVersion {}) not delivered for {} s "
                 "(edge ACKed version {}); sending it again",
                 node, pod.meta.namespace_, pod.meta.name, pod.meta.uid, version,
                 std::chrono::duration_cast<std::chrono::seconds>(now - before->second.since)
                     .count(),
                 acked);
    repair_(node, pod);
    next[pod.meta.uid] = Undelivered{version, now};
  }
  if (next.empty()) {
    undelivered_.erase(node);
  } else {
    seen = std::move(next);
  }
}

}  // namespace edgehub::hub

// Upstream's admission: which edge requests start now, which wait and in what order, which are
// refused; and the fixed label values its metrics use for edge-chosen strings.

#include <boost/asio/co_spawn.hpp>
#include <edgehub/hub/fair_queue.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/wire/builders.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::Priority;

struct Upstream::Waiting {
  Call call;
  Handler handler;
  Done done;
};

struct Upstream::Admission {
  Admission(metrics::Registry& registry, const UpstreamLimits& l)
      : limits(l),
        queue(l.max_in_progress_per_node),
        queued(registry
                   .gauge("edgehub_upstream_requests_queued",
                          "Edge requests waiting for one of the hub.maxUpstreamInProgress slots "
                          "(each holds only its message while it waits).")
                   .with({})),
        queued_bytes(registry
                         .gauge("edgehub_upstream_queued_bytes",
                                "Bytes of the edge requests waiting for a slot "
                                "(at most hub.maxUpstreamQueuedBytes).")
                         .with({})),
        refused(registry.counter("edgehub_upstream_refused_total",
                                 "Edge requests answered 429 without being handled, by reason "
                                 "(queue_bytes: hub.maxUpstreamQueuedBytes reached; node_queue: "
                                 "the node has too many requests waiting).",
                                 {"reason"})) {}

  void report() {
    queued.set(static_cast<double>(queue.waiting()));
    queued_bytes.set(static_cast<double>(queue.waiting_bytes()));
  }

  UpstreamLimits limits;
  FairQueue<Waiting> queue;
  metrics::Gauge& queued;
  metrics::Gauge& queued_bytes;
  metrics::Family<metrics::Counter>& refused;
  // Refusals are logged at most once per interval, with how many went unlogged.
  std::chrono::steady_clock::time_point last_logged{};
  std::uint64_t unlogged = 0;
};

void Upstream::AdmissionDeleter::operator()(Admission* a) const { delete a; }

std::unique_ptr<Upstream::Admission, Upstream::AdmissionDeleter> Upstream::make_admission(
    metrics::Registry& registry, const UpstreamLimits& limits) {
  return std::unique_ptr<Admission, AdmissionDeleter>(new Admission(registry, limits));
}

Upstream::~Upstream() = default;

namespace {

template <std::size_t N>
std::string_view known_or_other(std::string_view value, const std::array<std::string_view, N>& known) {
  const auto it = std::find(known.begin(), known.end(), value);
  return it == known.end() ? std::string_view("other") : *it;
}

// Bytes a waiting request holds: its strings and the bookkeeping around them.
std::size_t held_bytes(const Upstream::Call& c) {
  const auto& m = c.request;
  return 512 + m.content.size() + m.route.resource.size() + m.route.operation.size() +
         m.route.source.size() + m.route.group.size() + m.header.msg_id.size() +
         m.header.parent_msg_id.size() + c.node.size() + c.resource.ns.size() +
         c.resource.name.size() + c.resource.type.size();
}

}  // namespace

std::string_view upstream_operation_label(std::string_view operation) {
  static constexpr std::array<std::string_view, 7> kKnown{"insert", "update", "patch", "query",
                                                          "delete", "response", "keepalive"};
  return known_or_other(operation, kKnown);
}

std::string_view upstream_type_label(std::string_view type) {
  static constexpr std::array<std::string_view, 13> kKnown{
      "node",      "nodepatch",  "nodestatus", "lease",  "podpatch",
      "podstatus", "pod",        "configmap",  "secret", "serviceaccounttoken",
      "event",     "device",     "invalid"};
  return known_or_other(type, kKnown);
}

void Upstream::count(const Call& c, const UpstreamResult& result) {
  // Device reports name a device in their resource: label them by kind, not by device.
  std::string_view type = "other";
  switch (c.resource.form) {
    case wire::ResourceForm::object: type = upstream_type_label(c.resource.type); break;
    case wire::ResourceForm::device_twin: type = "device/twin"; break;
    case wire::ResourceForm::device_state: type = "device/state"; break;
    case wire::ResourceForm::membership: type = "membership"; break;
    case wire::ResourceForm::membership_detail: type = "membership/detail"; break;
    case wire::ResourceForm::twin: type = "twin"; break;
    case wire::ResourceForm::k8s_ca: type = "k8s/ca.crt"; break;
    case wire::ResourceForm::keepalive: type = "node"; break;
  }
  requests_
      .with({std::string(upstream_operation_label(c.request.route.operation)), std::string(type),
             result.failed ? "error" : "ok"})
      .inc();
}

kube::Priority Upstream::priority(Handler h) {
  if (h == &Upstream::lease) return Priority::Lease;
  if (h == &Upstream::node_insert || h == &Upstream::node_update || h == &Upstream::node_patch ||
      h == &Upstream::node_status_legacy || h == &Upstream::pod_patch ||
      h == &Upstream::pod_status_legacy) {
    return Priority::Status;
  }
  return Priority::Bulk;
}

void Upstream::submit(std::string node, std::string peer, wire::Message request, Done done,
                      bool lease_written_recently) {
  auto routed = route(std::move(node), std::move(peer), std::move(request));
  routed.call.lease_written_recently = lease_written_recently;
  if (routed.answer) {
    done(nullptr, std::move(*routed.answer));
    return;
  }
  auto& a = *admission_;
  const auto& who = routed.call.node;
  if (in_progress_ < a.limits.max_in_progress && a.queue.may_start(who)) {
    ++in_progress_;
    a.queue.started(who);
    start(std::move(routed.call), routed.handler, std::move(done));
    return;
  }
  const auto bytes = held_bytes(routed.call);
  if (a.queue.waiting_bytes() + bytes > a.limits.max_waiting_bytes) {
    return refuse_busy(routed.call, done, "queue_bytes");
  }
  if (a.queue.waiting(who) >= a.limits.max_waiting_per_node) {
    return refuse_busy(routed.call, done, "node_queue");
  }
  const auto level = priority(routed.handler);
  // A copy: `who` names the call's node, which the Waiting below takes over (arguments are
  // evaluated before push reads the name).
  auto owner = who;
  a.queue.push(owner, level, Waiting{std::move(routed.call), routed.handler, std::move(done)},
               bytes);
  a.report();
}

// Answered like the API server's own throttling (429), so that the edge retries later; the
// request is not handled.
void Upstream::refuse_busy(const Call& c, const Done& done, std::string_view why) {
  auto& a = *admission_;
  a.refused.with({std::string(why)}).inc();
  requests_
      .with({std::string(upstream_operation_label(c.request.route.operation)),
             std::string(upstream_type_label(c.resource.type)), "error"})
      .inc();
  const auto now = std::chrono::steady_clock::now();
  if (now - a.last_logged >= std::chrono::seconds(10)) {
    spdlog::warn("node {} from {}: refused {} {} ({}): {} requests, {} bytes waiting on the replica "
                 "(hub.maxUpstreamQueuedBytes {}); {} more refused since the last such line",
                 c.node, c.peer, logging::field(c.request.route.operation),
                 logging::field(c.request.route.resource), why, a.queue.waiting(),
                 a.queue.waiting_bytes(), a.limits.max_waiting_bytes, a.unlogged);
    a.last_logged = now;
    a.unlogged = 0;
  } else {
    ++a.unlogged;
  }
  auto m = wire::make_response(
      c.request,
      wire::status_error({.reason = "TooManyRequests",
                          .code = 429,
                          .message = "edgehub: too many requests waiting, retry later"}));
  m.route.operation = std::string(wire::operation::kError);
  done(nullptr, UpstreamResult{std::move(m), std::nullopt, true});
}

void Upstream::start(Call call, Handler handler, Done done) {
  auto node = call.node;
  asio::co_spawn(client_.executor(), run(std::move(call), handler),
                 [this, node = std::move(node), done = std::move(done)](std::exception_ptr e,
                                                                        UpstreamResult result) {
                   leave(node);
                   done(e, std::move(result));
                 });
}

asio::awaitable<UpstreamResult> Upstream::run(Call call, Handler handler) {
  auto result = co_await (this->*handler)(call);
  count(call, result);
  co_return result;
}

// A slot is free: the waiting requests that may start take the free slots, in FairQueue's
// order.
void Upstream::leave(const std::string& node) {
  auto& a = *admission_;
  a.queue.finished(node);
  --in_progress_;
  while (in_progress_ < a.limits.max_in_progress) {
    auto next = a.queue.pop();
    if (!next) break;
    ++in_progress_;
    start(std::move(next->item.call), next->item.handler, std::move(next->item.done));
  }
  a.report();
}

}  // namespace edgehub::hub

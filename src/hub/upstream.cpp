#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/authz/names.hpp>
#include <edgehub/authz/rules.hpp>
#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <edgehub/wire/resource.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "upstream_replies.hpp"

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::ErrorKind;

using namespace upstream_detail;

kube::RequestObserver api_request_metrics(metrics::Registry& registry) {
  auto& requests = registry.counter(
      "edgehub_api_requests_total",
      "Requests to the Kubernetes API, by verb, resource and HTTP code (or transport failure).",
      {"verb", "resource", "code"});
  auto& latency = registry.histogram(
      "edgehub_api_request_duration_seconds",
      "Kubernetes API request latency, rate-limiter wait excluded, by verb (watches not timed).",
      metrics::latency_buckets(), {"verb"});
  return [&requests, &latency](const kube::RequestRecord& r) {
    const std::string verb(r.verb);
    const std::string code = r.code != 0 ? std::to_string(r.code) : std::string(r.error);
    requests.with({verb, std::string(r.resource), code}).inc();
    if (r.verb != "watch")
      latency.with({verb}).observe(std::chrono::duration<double>(r.duration).count());
  };
}

Upstream::Upstream(kube::Client& client, RoutingIndex& index, metrics::Registry& registry,
                   std::string kube_ca_pem, UpstreamLimits limits)
    : client_(client),
      index_(index),
      kube_ca_pem_(std::move(kube_ca_pem)),
      requests_(registry.counter("edgehub_upstream_requests_total",
                                 "Edge requests handled, by operation, resource type and result.",
                                 {"operation", "type", "result"})),
      denied_(registry.counter("edgehub_upstream_denied_total",
                               "Edge requests refused by the node authorization rules (those of "
                               "Kubernetes' Node authorizer and NodeRestriction), by type and "
                               "reason.",
                               {"type", "reason"})),
      event_budget_(limits.event_qps, limits.event_burst),
      events_dropped_(registry
                          .counter("edgehub_upstream_events_dropped_total",
                                   "Edge events dropped beyond a node's hub.eventQps and "
                                   "hub.eventBurst (the kubelet's own client-side limit).")
                          .with({})),
      leases_not_written_(registry
                              .counter("edgehub_lease_renewals_not_written_total",
                                       "Lease renewals answered without an API write: the "
                                       "session wrote one less than hub.leaseWriteInterval ago.")
                              .with({})),
      admission_(make_admission(registry, limits)) {}

bool Upstream::event_allowed(const std::string& node) {
  const auto verdict = event_budget_.take(node);
  if (verdict.allowed) return true;
  events_dropped_.inc();
  if (verdict.report_dropped > 0) {
    spdlog::info("node {}: {} events dropped in the last minute or less: more than its event "
                 "budget (hub.eventQps, hub.eventBurst)",
                 node, verdict.report_dropped);
  }
  return false;
}

// route() is plain code, so that none of its temporaries live in a coroutine frame: a request
// in progress keeps only the handler's frame, and one waiting for a slot none.

Upstream::Routed Upstream::route(std::string node, std::string peer, wire::Message request) {
  auto parsed = wire::parse_resource(request.route.resource);
  if (!parsed) {
    const auto& op = request.route.operation;
    requests_.with({std::string(upstream_operation_label(op)), "invalid", "error"}).inc();
    spdlog::warn("node {} from {}: {} with bad resource: {}", node, peer, logging::field(op),
                 logging::field(parsed.error().message));
    auto m = wire::make_response(
        request, wire::status_error(
                     {.reason = "BadRequest", .code = 400, .message = parsed.error().message}));
    m.route.operation = std::string(wire::operation::kError);
    return {failed(std::move(m)), nullptr, {}};
  }
  Routed r{std::nullopt, nullptr,
           Call{std::move(node), std::move(peer), std::move(request), std::move(*parsed)}};
  const auto& c = r.call;
  const auto& op = c.request.route.operation;
  const auto& type = c.resource.type;
  const auto form = c.resource.form;
  if (devices_ && DeviceReports::handles(form)) {
    r.handler = &Upstream::device_report;
  } else if (form == wire::ResourceForm::k8s_ca && op == "query") {
    r.answer.emplace(succeeded(
        wire::make_response(c.request, json_string(kube_ca_pem_), wire::source::kCloudHub)));
  } else if (form == wire::ResourceForm::membership_detail) {
    // Confirm, so that the edge's devicetwin stops re-sending the request every minute.
    auto m = wire::make_response(c.request, json_string(wire::kContentOK),
                                 wire::source::kDeviceController, wire::group::kTwin);
    m.route.resource = "twin";
    r.answer.emplace(succeeded(std::move(m)));
  } else if (form != wire::ResourceForm::object) {
  } else if (type == "node" && op == "insert") {
    r.handler = &Upstream::node_insert;
  } else if (type == "node" && op == "update") {
    r.handler = &Upstream::node_update;
  } else if (type == "nodepatch" && op == "patch") {
    r.handler = &Upstream::node_patch;
  } else if (type == "nodestatus" && op == "update") {
    r.handler = &Upstream::node_status_legacy;
  } else if (type == "lease" && (op == "query" || op == "insert" || op == "update")) {
    r.handler = &Upstream::lease;
  } else if (type == "podpatch" && op == "patch") {
    r.handler = &Upstream::pod_patch;
  } else if (type == "podstatus" && op == "update") {
    r.handler = &Upstream::pod_status_legacy;
  } else if (type == "pod" && (op == "delete" || op == "insert")) {
    r.handler = &Upstream::pod;
  } else if ((type == "configmap" || type == "secret") && op == "query") {
    r.handler = &Upstream::config_query;
  } else if (type == "serviceaccounttoken" && op == "query") {
    r.handler = &Upstream::service_account_token;
  } else if (type == "event") {
    // Dropped before it takes a slot or a place in the queue.
    if (op == "insert" && !event_allowed(r.call.node)) {
      r.answer = UpstreamResult{.failed = true};
    } else {
      r.handler = &Upstream::event;
    }
  }
  if (r.handler != nullptr) {
    if (auto refused = check_names(r.call)) {
      r.answer = std::move(refused);
      r.handler = nullptr;
    }
  }
  if (r.handler == nullptr && !r.answer) {
    requests_
        .with({std::string(upstream_operation_label(op)), std::string(upstream_type_label(type)),
               "unsupported"})
        .inc();
    spdlog::info("node {} from {}: unsupported request {} {} (source {}, group {})", c.node,
                 c.peer, logging::field(op), logging::field(c.request.route.resource),
                 logging::field(c.request.route.source), logging::field(c.request.route.group));
    auto m = wire::make_response(
        c.request, wire::status_error({.reason = "MethodNotAllowed",
                                       .code = 405,
                                       .message = "edgehub does not handle " + op + " on " +
                                                  c.request.route.resource}));
    m.route.operation = std::string(wire::operation::kError);
    r.answer.emplace(failed(std::move(m)));
    return r;
  }
  if (r.answer) count(c, *r.answer);
  return r;
}

// A refusal: the Forbidden reply edgecore expects (an ObjectResp where it waits for an object,
// else the bare StatusError), a counter with fixed labels, and a log line.
UpstreamResult Upstream::refuse(const Call& c, std::string_view type,
                                const authz::Decision& decision, std::string_view kind,
                                bool object_resp, std::string_view group) {
  denied_.with({std::string(type), std::string(authz::to_string(decision.reason))}).inc();
  spdlog::warn("node {} from {}: refused {} {}: {}", c.node, c.peer,
               authz::printable(c.request.route.operation), type, decision.message);
  auto status = forbidden(decision.message, authz::printable(c.resource.name, 253),
                          std::string(kind), std::string(group));
  return failed(reply(c.request, object_resp ? wire::object_resp("null", status) : status));
}

// Every namespace and name an edge sends is a valid object name before it goes anywhere near
// an API path (the kube::Client encodes path segments as well).
std::optional<UpstreamResult> Upstream::check_names(const Call& c) {
  auto valid = authz::object_name(c.resource.ns, c.resource.name);
  if (valid) return std::nullopt;
  const auto form = c.resource.form;
  const bool device =
      form == wire::ResourceForm::device_twin || form == wire::ResourceForm::device_state;
  // Routed requests' types come from the fixed list route() knows: a label, not edge text.
  auto refused = refuse(c, device ? "device" : c.resource.type, valid, device ? "devices" : "",
                        c.resource.type != "configmap" && c.resource.type != "secret" && !device,
                        device ? "devices.kubeedge.io" : "");
  if (device && refused.reply) {
    // devicetwin waits for its confirm (DeviceReports' shape), which this refusal ends.
    refused.reply->route.source = std::string(wire::source::kDeviceController);
    refused.reply->route.group = std::string(wire::group::kTwin);
    refused.reply->route.resource = "twin";
  }
  return refused;
}

asio::awaitable<UpstreamResult> Upstream::device_report(Call& c) {
  co_return co_await devices_->handle(c.node, c.request, c.resource);
}

namespace {

// The object the edge sent, named after the node and typed (edgecore may leave both out).
std::string own_object(const Upstream::Call& c, std::string_view api_version,
                       std::string_view kind, std::string_view ns = {}) {
  auto body = content_object(c.request);
  if (!body.is_object()) body = nlohmann::json::object();
  body["apiVersion"] = api_version;
  body["kind"] = kind;
  body["metadata"]["name"] = c.node;
  if (!ns.empty()) body["metadata"]["namespace"] = ns;
  return body.dump();
}

UpstreamResult node_inserted(const Upstream::Call& c, kube::Result<kube::Object>& created) {
  UpstreamResult r;
  if (created) {
    r.reply = reply(c.request, wire::object_resp(created->raw));
    r.push_node = std::move(*created);
    return r;
  }
  r.reply =
      reply(c.request, wire::object_resp("null", status_error(created.error(), c.node, "nodes")));
  // AlreadyExists is the normal answer for a node that registered before.
  r.failed = !created.error().is(ErrorKind::AlreadyExists);
  if (r.failed) {
    spdlog::warn("node {}: registering the Node failed: {}", c.node, created.error().describe());
  }
  return r;
}

}  // namespace

// Coroutines here keep to awaits: their frames hold every local and temporary, and a request
// waiting for the API holds its frame.
asio::awaitable<UpstreamResult> Upstream::node_insert(Call& c) {
  if (c.resource.name != c.node) {
    co_return refuse(c, "node", other_node(c, "register node"), "nodes");
  }
  if (auto allowed = authz::node_create(c.node, content_object(c.request)); !allowed) {
    co_return refuse(c, "node", allowed, "nodes");
  }
  auto created =
      co_await client_.create(kube::resources::nodes(), "", own_object(c, "v1", "Node"), kStatus);
  auto r = node_inserted(c, created);
  if (!created && created.error().is(ErrorKind::AlreadyExists)) {
    auto existing = co_await client_.get(kube::resources::nodes(), "", c.node, kStatus);
    if (existing) r.push_node = std::move(*existing);
  }
  co_return r;
}

// The labels of the node's Node as stored, for the label rules; null when the patch changes
// none (no read needed) or the Node cannot be read (every changed label then counts as new).
asio::awaitable<nlohmann::json> Upstream::node_labels(const std::string& node,
                                                      const nlohmann::json& patch) {
  if (!authz::patch_touches_labels(patch)) co_return nlohmann::json();
  auto current = co_await client_.get(kube::resources::nodes(), "", node, kStatus);
  if (!current) co_return nlohmann::json();
  const auto object = current->json();
  if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object()) {
    co_return nlohmann::json();
  }
  co_return object["metadata"].value("labels", nlohmann::json());
}

asio::awaitable<UpstreamResult> Upstream::node_update(Call& c) {
  if (c.resource.name != c.node) {
    co_return refuse(c, "node", other_node(c, "update node"), "nodes", false);
  }
  // Edged updates labels and annotations this way; apply just those, so a stale copy of the
  // Node cannot overwrite what others changed.
  const auto body = content_object(c.request);
  nlohmann::json patch = {{"metadata", nlohmann::json::object()}};
  if (body.is_object() && body.contains("metadata") && body["metadata"].is_object()) {
    for (const char* key : {"labels", "annotations"}) {
      if (body["metadata"].contains(key)) patch["metadata"][key] = body["metadata"][key];
    }
  }
  const auto old_labels = co_await node_labels(c.node, patch);
  const auto& new_labels = patch["metadata"].contains("labels") ? patch["metadata"]["labels"]
                                                                : nlohmann::json();
  if (auto allowed = authz::node_labels_update(old_labels, new_labels); !allowed) {
    co_return refuse(c, "node", allowed, "nodes", false);
  }
  auto patched = co_await client_.patch(kube::resources::nodes(), "", c.node,
                                        kube::PatchType::Merge, dump(patch), kStatus);
  co_return outcome(reply(c.request, patched ? json_string(wire::kContentOK)
                                             : status_error(patched.error(), c.node, "nodes")),
                    static_cast<bool>(patched));
}

asio::awaitable<UpstreamResult> Upstream::node_patch(Call& c) {
  if (c.resource.name != c.node) {
    co_return refuse(c, "nodepatch", other_node(c, "patch node"), "nodes");
  }
  // What is checked is what is sent: the patch as parsed, not the edge's text.
  const auto patch = content_object(c.request);
  const auto old_labels = co_await node_labels(c.node, patch);
  if (auto allowed = authz::node_status_patch(patch, old_labels); !allowed) {
    co_return refuse(c, "nodepatch", allowed, "nodes");
  }
  auto patched = co_await client_.patch_status(kube::resources::nodes(), "", c.node,
                                               kube::PatchType::StrategicMerge, dump(patch));
  if (!patched) {
    co_return failed(reply(
        c.request, wire::object_resp("null", status_error(patched.error(), c.node, "nodes"))));
  }
  co_return succeeded(
      reply(c.request, wire::object_resp(patched->raw), patched->meta.resource_version));
}

asio::awaitable<UpstreamResult> Upstream::node_status_legacy(Call& c) {
  if (c.resource.name != c.node) {
    co_return refuse(c, "nodestatus", other_node(c, "update node"), "nodes", false);
  }
  const auto body = content_object(c.request);
  if (!body.is_object() || !body.contains("Status") || !body["Status"].is_object()) {
    co_return failed(reply(c.request, wire::status_error({.reason = "BadRequest",
                                                          .code = 400,
                                                          .message = "nodestatus needs a Status"})));
  }
  // Status only, by construction.
  const nlohmann::json patch = {{"status", body["Status"]}};
  auto patched = co_await client_.patch_status(kube::resources::nodes(), "", c.node,
                                               kube::PatchType::Merge, dump(patch));
  co_return outcome(reply(c.request, patched ? json_string(wire::kContentOK)
                                             : status_error(patched.error(), c.node, "nodes")),
                    static_cast<bool>(patched));
}

namespace {

std::string lease_body(const Upstream::Call& c) {
  return own_object(c, "coordination.k8s.io/v1", "Lease", "kube-node-lease");
}

UpstreamResult lease_answered(const Upstream::Call& c, const kube::Result<kube::Object>& answer) {
  // cloudcore's lease replies carry no resourceversion header (KUBEEDGE-WIRE §11.3).
  // A query for a lease not made yet is the normal first step, not a failure.
  const bool ok =
      answer || (c.request.route.operation == "query" && answer.error().is(ErrorKind::NotFound));
  return outcome(
      reply(c.request,
            answer ? wire::object_resp(answer->raw)
                   : wire::object_resp("null", status_error(answer.error(), c.node, "leases",
                                                            "coordination.k8s.io"))),
      ok);
}

}  // namespace

asio::awaitable<UpstreamResult> Upstream::lease(Call& c) {
  const auto& op = c.request.route.operation;
  if (c.resource.ns != "kube-node-lease" || c.resource.name != c.node) {
    co_return refuse(c, "lease",
                     authz::deny(authz::Reason::other_node,
                                 "node " + c.node +
                                     " may only use its own lease in kube-node-lease"),
                     "leases", true, "coordination.k8s.io");
  }
  if (op == "update" && c.lease_written_recently) {
    // hub.leaseWriteInterval: the edge gets its own Lease back, as written; the API keeps the
    // session's last written renewTime a little longer. Its resourceVersion is still the
    // stored one, so the next renewal that is written applies cleanly.
    leases_not_written_.inc();
    co_return succeeded(reply(c.request, wire::object_resp(lease_body(c))));
  }
  kube::Result<kube::Object> answer = kube::make_error(ErrorKind::Internal, "unreachable");
  if (op == "query") {
    answer = co_await client_.get(kube::resources::leases(), c.resource.ns, c.node, kLease);
  } else if (op == "insert") {
    answer =
        co_await client_.create(kube::resources::leases(), c.resource.ns, lease_body(c), kLease);
  } else {
    answer = co_await client_.update(kube::resources::leases(), c.resource.ns, c.node,
                                     lease_body(c), kLease);
  }
  auto r = lease_answered(c, answer);
  r.lease_written = op != "query" && static_cast<bool>(answer);
  co_return r;
}

}  // namespace edgehub::hub

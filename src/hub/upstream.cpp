#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::ErrorKind;
using kube::Priority;

namespace {

// Named option objects: GCC 12 destroys aggregate temporaries made inside a co_await
// expression twice (brace-initialised ones, defaulted `= {}` arguments, the result of a
// ?: between two aggregates), so calls in coroutines always pass named objects.
const kube::RequestOptions kBulk{};
const kube::RequestOptions kStatus{.priority = Priority::Status};
const kube::RequestOptions kLease{.priority = Priority::Lease};

// Go's StatusError for an API failure, with the details the API server would give.
std::string status_error(const kube::Error& e, const std::string& name, const std::string& kind,
                         const std::string& group = {}) {
  std::string reason = e.reason;
  if (reason.empty()) reason = std::string(kube::to_string(e.kind));
  return wire::status_error({.reason = reason,
                             .code = e.http_status != 0 ? e.http_status : 500,
                             .message = e.message,
                             .name = name,
                             .group = group,
                             .kind = kind});
}

std::string forbidden(const std::string& message, const std::string& name, const std::string& kind,
                      const std::string& group = {}) {
  return wire::status_error({.reason = "Forbidden",
                             .code = 403,
                             .message = message,
                             .name = name,
                             .group = group,
                             .kind = kind});
}

wire::Message reply(const wire::Message& request, std::string content,
                    std::string resource_version = {}) {
  return wire::make_response(request, std::move(content), wire::source::kEdgeController,
                             wire::group::kResource, std::move(resource_version));
}

std::string json_string(std::string_view text) {
  wire::Message m;
  m.set_content_string(text);
  return m.content;
}

// A handler's answer: the reply and whether the request failed (refused, invalid, or the API
// said no). Each handler decides; nothing is guessed from the reply's text.
UpstreamResult succeeded(wire::Message m) {
  return {std::move(m), std::nullopt, false};
}
UpstreamResult failed(wire::Message m) {
  return {std::move(m), std::nullopt, true};
}
UpstreamResult outcome(wire::Message m, bool ok) {
  return {std::move(m), std::nullopt, !ok};
}

// The request's content as an object: edgecore sends objects embedded, patches as strings.
nlohmann::json content_object(const wire::Message& m) {
  if (auto text = m.content_string()) return nlohmann::json::parse(*text, nullptr, false);
  return m.content_json();
}

}  // namespace

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
                               "Edge requests refused because the node may not touch the object.",
                               {"type"})),
      admission_(make_admission(registry, limits)) {}

// route() is plain code, so that none of its temporaries live in a coroutine frame: a request
// in progress keeps only the handler's frame, and one waiting for a slot none.

Upstream::Routed Upstream::route(std::string node, wire::Message request) {
  auto parsed = wire::parse_resource(request.route.resource);
  if (!parsed) {
    const auto& op = request.route.operation;
    requests_.with({std::string(upstream_operation_label(op)), "invalid", "error"}).inc();
    spdlog::warn("node {}: {} with bad resource: {}", node, logging::field(op),
                 logging::field(parsed.error().message));
    auto m = wire::make_response(
        request, wire::status_error(
                     {.reason = "BadRequest", .code = 400, .message = parsed.error().message}));
    m.route.operation = std::string(wire::operation::kError);
    return {failed(std::move(m)), nullptr, {}};
  }
  Routed r{std::nullopt, nullptr, Call{std::move(node), std::move(request), std::move(*parsed)}};
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
    r.handler = &Upstream::event;
  }
  if (r.handler == nullptr && !r.answer) {
    requests_
        .with({std::string(upstream_operation_label(op)), std::string(upstream_type_label(type)),
               "unsupported"})
        .inc();
    spdlog::info("node {}: unsupported request {} {} (source {}, group {})", c.node,
                 logging::field(op), logging::field(c.request.route.resource),
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
    denied_.with({"node"}).inc();
    co_return failed(
        reply(c.request,
              wire::object_resp(
                  "null", forbidden("node " + c.node + " may not register node " + c.resource.name,
                                    c.resource.name, "nodes"))));
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

asio::awaitable<UpstreamResult> Upstream::node_update(Call& c) {
  if (c.resource.name != c.node) {
    denied_.with({"node"}).inc();
    co_return failed(
        reply(c.request, forbidden("node " + c.node + " may not update node " + c.resource.name,
                                   c.resource.name, "nodes")));
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
  auto patched = co_await client_.patch(kube::resources::nodes(), "", c.node,
                                        kube::PatchType::Merge, patch.dump(), kStatus);
  co_return outcome(reply(c.request, patched ? json_string(wire::kContentOK)
                                             : status_error(patched.error(), c.node, "nodes")),
                    static_cast<bool>(patched));
}

asio::awaitable<UpstreamResult> Upstream::node_patch(Call& c) {
  if (c.resource.name != c.node) {
    denied_.with({"nodepatch"}).inc();
    co_return failed(reply(
        c.request, wire::object_resp("null", forbidden("node " + c.node + " may not patch node " +
                                                           c.resource.name,
                                                       c.resource.name, "nodes"))));
  }
  auto body = c.request.content_string();
  auto patched = co_await client_.patch_status(kube::resources::nodes(), "", c.node,
                                               kube::PatchType::StrategicMerge,
                                               body ? *body : c.request.content);
  if (!patched) {
    co_return failed(reply(
        c.request, wire::object_resp("null", status_error(patched.error(), c.node, "nodes"))));
  }
  co_return succeeded(
      reply(c.request, wire::object_resp(patched->raw), patched->meta.resource_version));
}

asio::awaitable<UpstreamResult> Upstream::node_status_legacy(Call& c) {
  const auto body = content_object(c.request);
  if (c.resource.name != c.node || !body.is_object() || !body.contains("Status")) {
    co_return failed(reply(
        c.request,
        c.resource.name != c.node
            ? forbidden("node " + c.node + " may not update node " + c.resource.name,
                        c.resource.name, "nodes")
            : wire::status_error(
                  {.reason = "BadRequest", .code = 400, .message = "nodestatus needs a Status"})));
  }
  const nlohmann::json patch = {{"status", body["Status"]}};
  auto patched = co_await client_.patch_status(kube::resources::nodes(), "", c.node,
                                               kube::PatchType::Merge, patch.dump());
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
    denied_.with({"lease"}).inc();
    co_return failed(reply(
        c.request,
        wire::object_resp(
            "null", forbidden("node " + c.node + " may only use its own lease in kube-node-lease",
                              c.resource.name, "leases", "coordination.k8s.io"))));
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
  co_return lease_answered(c, answer);
}

asio::awaitable<bool> Upstream::pod_is_on_node(const std::string& node, const std::string& ns,
                                               const std::string& name) {
  if (index_.has_pod(node, ns, name)) co_return true;
  // Not (yet) in the index: ask the API, which is the truth.
  auto pod = co_await client_.get(kube::resources::pods(), ns, name, kStatus);
  co_return pod && pod->node_name == node;
}

asio::awaitable<UpstreamResult> Upstream::pod_patch(Call& c) {
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  if (!co_await pod_is_on_node(c.node, ns, name)) {
    denied_.with({"podpatch"}).inc();
    co_return failed(
        reply(c.request, wire::object_resp("null", forbidden("pod " + ns + "/" + name +
                                                                 " is not bound to node " + c.node,
                                                             name, "pods"))));
  }
  auto body = c.request.content_string();
  auto patched = co_await client_.patch_status(kube::resources::pods(), ns, name,
                                               kube::PatchType::StrategicMerge,
                                               body ? *body : c.request.content);
  if (!patched) {
    co_return failed(
        reply(c.request, wire::object_resp("null", status_error(patched.error(), name, "pods"))));
  }
  co_return succeeded(
      reply(c.request, wire::object_resp(patched->raw), patched->meta.resource_version));
}

asio::awaitable<UpstreamResult> Upstream::pod_status_legacy(Call& c) {
  // {"UID","Name","Status"} for one pod, or an array of them for `<ns>/podstatus`.
  auto body = content_object(c.request);
  if (body.is_object()) body = nlohmann::json::array({body});
  if (!body.is_array()) {
    co_return failed(
        reply(c.request, wire::status_error({.reason = "BadRequest",
                                             .code = 400,
                                             .message = "podstatus needs {UID, Name, Status}"})));
  }
  for (const auto& item : body) {
    if (!item.is_object()) continue;
    const std::string name = item.value("Name", c.resource.name);
    if (name.empty() || !co_await pod_is_on_node(c.node, c.resource.ns, name)) {
      denied_.with({"podstatus"}).inc();
      co_return failed(reply(c.request, forbidden("pod " + c.resource.ns + "/" + name +
                                                      " is not bound to node " + c.node,
                                                  name, "pods")));
    }
    const nlohmann::json patch = {{"status", item.value("Status", nlohmann::json::object())}};
    auto patched = co_await client_.patch_status(kube::resources::pods(), c.resource.ns, name,
                                                 kube::PatchType::Merge, patch.dump());
    if (!patched) {
      co_return failed(reply(c.request, status_error(patched.error(), name, "pods")));
    }
  }
  co_return succeeded(reply(c.request, json_string(wire::kContentOK)));
}

asio::awaitable<UpstreamResult> Upstream::pod(Call& c) {
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  if (c.request.route.operation == "insert") {
    // A mirror (static) pod: only for this node.
    auto body = content_object(c.request);
    const bool mine = body.is_object() && body.contains("spec") && body["spec"].is_object() &&
                      body["spec"].value("nodeName", "") == c.node;
    if (!mine) {
      denied_.with({"pod"}).inc();
      co_return failed(
          reply(c.request,
                wire::object_resp(
                    "null", forbidden("node " + c.node + " may only create pods bound to itself",
                                      name, "pods"))));
    }
    body["apiVersion"] = "v1";
    body["kind"] = "Pod";
    auto created = co_await client_.create(kube::resources::pods(), ns, body.dump(), kStatus);
    co_return outcome(
        reply(c.request,
              created ? wire::object_resp(created->raw)
                      : wire::object_resp("null", status_error(created.error(), name, "pods"))),
        static_cast<bool>(created));
  }
  if (!co_await pod_is_on_node(c.node, ns, name)) {
    denied_.with({"pod"}).inc();
    co_return failed(reply(
        c.request,
        forbidden("pod " + ns + "/" + name + " is not bound to node " + c.node, name, "pods")));
  }
  kube::DeleteOptions options;
  if (auto uid = c.request.content_string()) {
    options.precondition_uid = *uid;  // legacy: a bare UID
  } else if (const auto j = c.request.content_json(); j.is_object()) {
    if (auto g = j.find("gracePeriodSeconds"); g != j.end() && g->is_number_integer()) {
      options.grace_period_seconds = g->get<std::int64_t>();
    }
    if (auto p = j.find("preconditions"); p != j.end() && p->is_object()) {
      options.precondition_uid = p->value("uid", "");
      options.precondition_resource_version = p->value("resourceVersion", "");
    }
  }
  auto removed = co_await client_.remove(kube::resources::pods(), ns, name, options);
  const bool gone = removed || removed.error().is(ErrorKind::NotFound);
  co_return outcome(reply(c.request, gone ? json_string(wire::kContentOK)
                                          : status_error(removed.error(), name, "pods")),
                    gone);
}

asio::awaitable<UpstreamResult> Upstream::config_query(Call& c) {
  const bool secret = c.resource.type == "secret";
  const std::string kind = secret ? "secrets" : "configmaps";
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  if (!index_.references(c.node, secret ? RefKind::secret : RefKind::configmap, ns, name)) {
    denied_.with({c.resource.type}).inc();
    spdlog::info("node {}: refused {} {}/{}: no pod on the node references it", c.node,
                 c.resource.type, ns, name);
    co_return failed(reply(c.request, forbidden("no pod bound to node " + c.node + " references " +
                                                    c.resource.type + " " + ns + "/" + name,
                                                name, kind)));
  }
  const auto resource = secret ? kube::resources::secrets() : kube::resources::configmaps();
  auto object = co_await client_.get(resource, ns, name, kBulk);
  if (!object) {
    // cloudcore's answer: the StatusError as content, no resourceversion (§3.7 quirk).
    co_return failed(reply(c.request, status_error(object.error(), name, kind)));
  }
  co_return succeeded(reply(c.request, object->raw, object->meta.resource_version));
}

asio::awaitable<UpstreamResult> Upstream::service_account_token(Call& c) {
  const auto& ns = c.resource.ns;
  const auto& sa = c.resource.name;
  if (!index_.uses_service_account(c.node, ns, sa)) {
    denied_.with({"serviceaccounttoken"}).inc();
    co_return failed(reply(c.request, forbidden("no pod bound to node " + c.node +
                                                    " uses service account " + ns + "/" + sa,
                                                sa, "serviceaccounts")));
  }
  auto body = content_object(c.request);
  if (!body.is_object()) body = nlohmann::json::object();
  body["apiVersion"] = "authentication.k8s.io/v1";
  body["kind"] = "TokenRequest";
  auto token = co_await client_.create_token(ns, sa, body.dump());
  co_return outcome(
      reply(c.request, token ? token->raw : status_error(token.error(), sa, "serviceaccounts")),
      static_cast<bool>(token));
}

asio::awaitable<UpstreamResult> Upstream::event(Call& c) {
  // Events are best effort and unanswered (cloudcore answers nothing either).
  if (c.request.route.operation != "insert") co_return UpstreamResult{};
  auto body = content_object(c.request);
  if (!body.is_object()) co_return UpstreamResult{.failed = true};
  body["apiVersion"] = "v1";
  body["kind"] = "Event";
  auto created =
      co_await client_.create(kube::resources::events(), c.resource.ns, body.dump(), kBulk);
  UpstreamResult r;
  if (!created && !created.error().is(ErrorKind::AlreadyExists)) {
    spdlog::debug("node {}: event not recorded: {}", c.node, created.error().describe());
    r.failed = true;
  }
  co_return r;
}

}  // namespace edgehub::hub

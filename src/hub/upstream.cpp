#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::ErrorKind;
using kube::Priority;

struct Upstream::Call {
  std::string node;
  wire::Message request;
  wire::Resource resource;
};

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
  return wire::status_error({.reason = "Forbidden", .code = 403, .message = message,
                             .name = name, .group = group, .kind = kind});
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
                   std::string kube_ca_pem)
    : client_(client),
      index_(index),
      kube_ca_pem_(std::move(kube_ca_pem)),
      requests_(registry.counter("edgehub_upstream_requests_total",
                                 "Edge requests handled, by operation, resource type and result.",
                                 {"operation", "type", "result"})),
      denied_(registry.counter("edgehub_upstream_denied_total",
                               "Edge requests refused because the node may not touch the object.",
                               {"type"})) {}

asio::awaitable<UpstreamResult> Upstream::handle(std::string node, wire::Message request) {
  auto parsed = wire::parse_resource(request.route.resource);
  const std::string op = request.route.operation;
  if (!parsed) {
    requests_.with({op, "invalid", "error"}).inc();
    spdlog::warn("node {}: {} with bad resource: {}", node, op, parsed.error().message);
    auto m = wire::make_response(request,
                                 wire::status_error({.reason = "BadRequest", .code = 400,
                                                     .message = parsed.error().message}));
    m.route.operation = std::string(wire::operation::kError);
    co_return failed(std::move(m));
  }
  Call c{std::move(node), std::move(request), std::move(*parsed)};
  const auto& type = c.resource.type;
  const auto form = c.resource.form;
  UpstreamResult result;
  bool handled = true;
  if (devices_ && DeviceReports::handles(form)) {
    result = co_await devices_->handle(c.node, c.request, c.resource);
  } else if (form == wire::ResourceForm::k8s_ca && op == "query") {
    result.reply = wire::make_response(c.request, json_string(kube_ca_pem_), wire::source::kCloudHub);
  } else if (form == wire::ResourceForm::membership_detail) {
    // Confirm, so that the edge's devicetwin stops re-sending the request every minute.
    auto m = wire::make_response(c.request, json_string(wire::kContentOK),
                                 wire::source::kDeviceController, wire::group::kTwin);
    m.route.resource = "twin";
    result.reply = std::move(m);
  } else if (form != wire::ResourceForm::object) {
    handled = false;
  } else if (type == "node" && op == "insert") {
    result = co_await node_insert(c);
  } else if (type == "node" && op == "update") {
    result = co_await node_update(c);
  } else if (type == "nodepatch" && op == "patch") {
    result = co_await node_patch(c);
  } else if (type == "nodestatus" && op == "update") {
    result = co_await node_status_legacy(c);
  } else if (type == "lease" && (op == "query" || op == "insert" || op == "update")) {
    result = co_await lease(c);
  } else if (type == "podpatch" && op == "patch") {
    result = co_await pod_patch(c);
  } else if (type == "podstatus" && op == "update") {
    result = co_await pod_status_legacy(c);
  } else if (type == "pod" && (op == "delete" || op == "insert")) {
    result = co_await pod(c);
  } else if ((type == "configmap" || type == "secret") && op == "query") {
    result = co_await config_query(c);
  } else if (type == "serviceaccounttoken" && op == "query") {
    result = co_await service_account_token(c);
  } else if (type == "event") {
    result = co_await event(c);
  } else {
    handled = false;
  }
  if (!handled) {
    requests_.with({op, type.empty() ? c.request.route.resource : type, "unsupported"}).inc();
    spdlog::info("node {}: unsupported request {} {} (source {}, group {})", c.node, op,
                 c.request.route.resource, c.request.route.source, c.request.route.group);
    auto m = wire::make_response(
        c.request, wire::status_error({.reason = "MethodNotAllowed", .code = 405,
                                       .message = "edgehub does not handle " + op + " on " +
                                                  c.request.route.resource}));
    m.route.operation = std::string(wire::operation::kError);
    co_return failed(std::move(m));
  }
  // Device reports name a device in their resource: label them by kind, not by device.
  const std::string type_label = form == wire::ResourceForm::object        ? type
                                 : form == wire::ResourceForm::device_twin  ? "device/twin"
                                 : form == wire::ResourceForm::device_state ? "device/state"
                                                                            : c.request.route.resource;
  requests_.with({op, type_label, result.failed ? "error" : "ok"}).inc();
  co_return result;
}

asio::awaitable<UpstreamResult> Upstream::node_insert(Call& c) {
  if (c.resource.name != c.node) {
    denied_.with({"node"}).inc();
    co_return failed(
        reply(c.request,
              wire::object_resp(
                  "null", forbidden("node " + c.node + " may not register node " + c.resource.name,
                                    c.resource.name, "nodes"))));
  }
  auto body = content_object(c.request);
  if (!body.is_object()) body = nlohmann::json::object();
  body["apiVersion"] = "v1";
  body["kind"] = "Node";
  body["metadata"]["name"] = c.node;
  auto created = co_await client_.create(kube::resources::nodes(), "", body.dump(), kStatus);
  UpstreamResult r;
  if (created) {
    r.reply = reply(c.request, wire::object_resp(created->raw));
    r.push_node = *created;
    co_return r;
  }
  r.reply = reply(c.request, wire::object_resp("null", status_error(created.error(), c.node, "nodes")));
  // AlreadyExists is the normal answer for a node that registered before.
  r.failed = !created.error().is(ErrorKind::AlreadyExists);
  if (created.error().is(ErrorKind::AlreadyExists)) {
    auto existing = co_await client_.get(kube::resources::nodes(), "", c.node, kStatus);
    if (existing) r.push_node = *existing;
  } else {
    spdlog::warn("node {}: registering the Node failed: {}", c.node, created.error().describe());
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
  } else {
    auto body = content_object(c.request);
    if (!body.is_object()) body = nlohmann::json::object();
    body["apiVersion"] = "coordination.k8s.io/v1";
    body["kind"] = "Lease";
    body["metadata"]["name"] = c.node;
    body["metadata"]["namespace"] = "kube-node-lease";
    if (op == "insert") {
      answer = co_await client_.create(kube::resources::leases(), c.resource.ns, body.dump(),
                                       kLease);
    } else {
      answer = co_await client_.update(kube::resources::leases(), c.resource.ns, c.node,
                                       body.dump(), kLease);
    }
  }
  // cloudcore's lease replies carry no resourceversion header (KUBEEDGE-WIRE §11.3).
  // A query for a lease not made yet is the normal first step, not a failure.
  const bool ok = answer || (op == "query" && answer.error().is(ErrorKind::NotFound));
  co_return outcome(
      reply(c.request,
            answer ? wire::object_resp(answer->raw)
                   : wire::object_resp("null", status_error(answer.error(), c.node, "leases",
                                                            "coordination.k8s.io"))),
      ok);
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
  auto created = co_await client_.create(kube::resources::events(), c.resource.ns, body.dump(), kBulk);
  UpstreamResult r;
  if (!created && !created.error().is(ErrorKind::AlreadyExists)) {
    spdlog::debug("node {}: event not recorded: {}", c.node, created.error().describe());
    r.failed = true;
  }
  co_return r;
}

}  // namespace edgehub::hub

// Upstream's handlers of a node's pods and what they use: pod status, pod deletion and mirror
// pods, the ConfigMaps and Secrets its pods reference, service account tokens, events.

#include <boost/asio/use_awaitable.hpp>
#include <edgehub/authz/names.hpp>
#include <edgehub/authz/rules.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <spdlog/spdlog.h>

#include "upstream_replies.hpp"

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::ErrorKind;
using namespace upstream_detail;

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
    co_return refuse(c, "podpatch", not_bound(c, ns, name), "pods");
  }
  const auto patch = content_object(c.request);
  if (auto allowed = authz::pod_status_patch(patch); !allowed) {
    co_return refuse(c, "podpatch", allowed, "pods");
  }
  auto patched = co_await client_.patch_status(kube::resources::pods(), ns, name,
                                               kube::PatchType::StrategicMerge, dump(patch));
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
    const auto& named = item.contains("Name") ? item["Name"] : nlohmann::json();
    const std::string name = named.is_string() ? named.get<std::string>() : c.resource.name;
    // A name from the content, not the resource: checked like the resource's.
    if (auto valid = authz::object_name({}, name); !valid || name.empty()) {
      co_return refuse(c, "podstatus",
                       valid ? authz::deny(authz::Reason::invalid_name, "a pod needs a name")
                             : valid,
                       "pods", false);
    }
    if (!co_await pod_is_on_node(c.node, c.resource.ns, name)) {
      co_return refuse(c, "podstatus", not_bound(c, c.resource.ns, name), "pods", false);
    }
    const nlohmann::json patch = {{"status", item.value("Status", nlohmann::json::object())}};
    if (auto allowed = authz::pod_status_patch(patch); !allowed) {
      co_return refuse(c, "podstatus", allowed, "pods", false);
    }
    auto patched = co_await client_.patch_status(kube::resources::pods(), c.resource.ns, name,
                                                 kube::PatchType::Merge, dump(patch));
    if (!patched) {
      co_return failed(reply(c.request, status_error(patched.error(), name, "pods")));
    }
  }
  co_return succeeded(reply(c.request, json_string(wire::kContentOK)));
}

asio::awaitable<UpstreamResult> Upstream::pod(Call& c) {
  if (c.request.route.operation == "insert") co_return co_await mirror_pod(c);
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  // The pod as stored decides (NodeRestriction reads it too), and its UID becomes the delete's
  // precondition: a pod of another node made under the same name meanwhile is not deleted.
  auto current = co_await client_.get(kube::resources::pods(), ns, name, kStatus);
  if (!current && current.error().is(ErrorKind::NotFound)) {
    co_return succeeded(reply(c.request, json_string(wire::kContentOK)));
  }
  if (!current) co_return failed(reply(c.request, status_error(current.error(), name, "pods")));
  if (current->node_name != c.node) {
    co_return refuse(c, "pod", not_bound(c, ns, name), "pods", false);
  }
  kube::DeleteOptions options;
  if (auto uid = c.request.content_string()) {
    options.precondition_uid = *uid;  // legacy: a bare UID
  } else if (const auto j = c.request.content_json(); j.is_object()) {
    if (auto g = j.find("gracePeriodSeconds"); g != j.end() && g->is_number_integer()) {
      options.grace_period_seconds = g->get<std::int64_t>();
    }
    if (auto p = j.find("preconditions"); p != j.end() && p->is_object()) {
      options.precondition_uid = text_member(*p, "uid");
      options.precondition_resource_version = text_member(*p, "resourceVersion");
    }
  }
  if (options.precondition_uid.empty()) options.precondition_uid = current->meta.uid;
  auto removed = co_await client_.remove(kube::resources::pods(), ns, name, options);
  const bool gone = removed || removed.error().is(ErrorKind::NotFound);
  co_return outcome(reply(c.request, gone ? json_string(wire::kContentOK)
                                          : status_error(removed.error(), name, "pods")),
                    gone);
}

asio::awaitable<UpstreamResult> Upstream::mirror_pod(Call& c) {
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  auto body = content_object(c.request);
  const auto& metadata = body.is_object() && body.contains("metadata") ? body["metadata"]
                                                                       : nlohmann::json();
  if (name.empty() || ns.empty() || !metadata.is_object() ||
      text_member(metadata, "name", name) != name ||
      text_member(metadata, "namespace", ns) != ns) {
    co_return refuse(c, "pod",
                     authz::deny(authz::Reason::invalid_body,
                                 "the pod's metadata must name the pod of the resource"),
                     "pods");
  }
  // The owner reference must carry the Node's UID: read it.
  auto node = co_await client_.get(kube::resources::nodes(), "", c.node, kStatus);
  const std::string node_uid = node ? node->meta.uid : std::string();
  if (auto allowed = authz::mirror_pod_create(c.node, node_uid, body); !allowed) {
    co_return refuse(c, "pod", allowed, "pods");
  }
  body["apiVersion"] = "v1";
  body["kind"] = "Pod";
  auto created = co_await client_.create(kube::resources::pods(), ns, dump(body), kStatus);
  co_return outcome(
      reply(c.request,
            created ? wire::object_resp(created->raw)
                    : wire::object_resp("null", status_error(created.error(), name, "pods"))),
      static_cast<bool>(created));
}

asio::awaitable<UpstreamResult> Upstream::config_query(Call& c) {
  const bool secret = c.resource.type == "secret";
  const std::string kind = secret ? "secrets" : "configmaps";
  const auto& ns = c.resource.ns;
  const auto& name = c.resource.name;
  if (!index_.references(c.node, secret ? RefKind::secret : RefKind::configmap, ns, name)) {
    co_return refuse(c, secret ? "secret" : "configmap",
                     authz::deny(authz::Reason::other_node,
                                 "no pod bound to node " + c.node + " references " +
                                     c.resource.type + " " + ns + "/" + name),
                     kind, false);
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
  // Never the edge's TokenRequest: one built from the checked binding, expiry and audiences.
  const auto request = content_object(c.request);
  const auto pod_name = authz::bound_pod_name(request);
  nlohmann::json pod;
  if (!pod_name.empty()) {
    auto found = co_await client_.get(kube::resources::pods(), ns, pod_name, kStatus);
    if (found) pod = found->json();
  }
  auto token_request = authz::token_request(c.node, ns, sa, request, pod);
  if (!token_request.decision) {
    co_return refuse(c, "serviceaccounttoken", token_request.decision, "serviceaccounts", false);
  }
  auto token = co_await client_.create_token(ns, sa, dump(token_request.body));
  co_return outcome(
      reply(c.request, token ? token->raw : status_error(token.error(), sa, "serviceaccounts")),
      static_cast<bool>(token));
}

asio::awaitable<UpstreamResult> Upstream::event(Call& c) {
  // Events are best effort and unanswered (cloudcore answers nothing either).
  if (c.request.route.operation != "insert") co_return UpstreamResult{};
  auto body = content_object(c.request);
  if (!body.is_object()) {
    spdlog::info("node {} from {}: event refused: not a JSON object nested at most {} deep",
                 c.node, c.peer, wire::kMaxEdgeJsonDepth);
    co_return UpstreamResult{.failed = true};
  }
  auto subject = authz::event_subject(c.node, c.resource.ns, body, c.request.content.size());
  if (subject.decision && !subject.node &&
      !co_await pod_is_on_node(c.node, c.resource.ns, subject.pod_name)) {
    subject.decision = not_bound(c, c.resource.ns, subject.pod_name);
  }
  if (!subject.decision) {
    auto refused = refuse(c, "event", subject.decision, "events", false);
    refused.reply.reset();  // no answer, as for every event
    co_return refused;
  }
  body["apiVersion"] = "v1";
  body["kind"] = "Event";
  auto created = co_await client_.create(kube::resources::events(), c.resource.ns, dump(body), kBulk);
  UpstreamResult r;
  if (!created && !created.error().is(ErrorKind::AlreadyExists)) {
    spdlog::debug("node {}: event not recorded: {}", c.node, created.error().describe());
    r.failed = true;
  }
  co_return r;
}

}  // namespace edgehub::hub

#pragma once
// What Upstream's handlers (upstream.cpp: nodes and leases; upstream_pods.cpp: pods, their
// configuration, tokens and events) answer with: replies in cloudcore's shapes, the StatusErrors
// the API server would give, and edge-sent JSON read without exceptions.

#include <edgehub/authz/rules.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <string>
#include <string_view>

namespace edgehub::hub::upstream_detail {

// Named option objects: GCC 12 destroys aggregate temporaries made inside a co_await
// expression twice (brace-initialised ones, defaulted `= {}` arguments, the result of a
// ?: between two aggregates), so calls in coroutines always pass named objects.
inline const kube::RequestOptions kBulk{};
inline const kube::RequestOptions kStatus{.priority = kube::Priority::Status};
inline const kube::RequestOptions kLease{.priority = kube::Priority::Lease};

// Go's StatusError for an API failure, with the details the API server would give.
inline std::string status_error(const kube::Error& e, const std::string& name,
                                const std::string& kind, const std::string& group = {}) {
  std::string reason = e.reason;
  if (reason.empty()) reason = std::string(kube::to_string(e.kind));
  return wire::status_error({.reason = reason,
                             .code = e.http_status != 0 ? e.http_status : 500,
                             .message = e.message,
                             .name = name,
                             .group = group,
                             .kind = kind});
}

inline std::string forbidden(const std::string& message, const std::string& name,
                             const std::string& kind, const std::string& group = {}) {
  return wire::status_error({.reason = "Forbidden",
                             .code = 403,
                             .message = message,
                             .name = name,
                             .group = group,
                             .kind = kind});
}

inline wire::Message reply(const wire::Message& request, std::string content,
                           std::string resource_version = {}) {
  return wire::make_response(request, std::move(content), wire::source::kEdgeController,
                             wire::group::kResource, std::move(resource_version));
}

inline std::string json_string(std::string_view text) {
  wire::Message m;
  m.set_content_string(text);
  return m.content;
}

// A handler's answer: the reply and whether the request failed (refused, invalid, or the API
// said no). Each handler decides; nothing is guessed from the reply's text.
inline UpstreamResult succeeded(wire::Message m) {
  return {std::move(m), std::nullopt, false};
}
inline UpstreamResult failed(wire::Message m) {
  return {std::move(m), std::nullopt, true};
}
inline UpstreamResult outcome(wire::Message m, bool ok) {
  return {std::move(m), std::nullopt, !ok};
}

// The request's content as an object: edgecore sends objects embedded, patches as strings.
inline nlohmann::json content_object(const wire::Message& m) {
  if (auto text = m.content_string()) {
    return wire::parse_json_bounded(*text, wire::kMaxEdgeJsonDepth);
  }
  return m.content_json();
}

// JSON for the API: what was checked is what is sent (the edge's text is not forwarded).
// Strings came through a JSON parser, so nothing here is invalid UTF-8; replace, not throw,
// all the same.
inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A string member of edge-sent JSON; `fallback` when absent, empty when of another type (no
// exception: nlohmann's value() throws on a type mismatch).
inline std::string text_member(const nlohmann::json& j, const char* key,
                               const std::string& fallback = {}) {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  return it->is_string() ? it->get<std::string>() : std::string();
}

inline authz::Decision other_node(const Upstream::Call& c, std::string_view what) {
  return authz::deny(authz::Reason::other_node,
                     "node " + c.node + " may not " + std::string(what) + " " + c.resource.name);
}

inline authz::Decision not_bound(const Upstream::Call& c, const std::string& ns,
                                 const std::string& name) {
  return authz::deny(authz::Reason::other_node,
                     "pod " + ns + "/" + name + " is not bound to node " + c.node);
}

}  // namespace edgehub::hub::upstream_detail

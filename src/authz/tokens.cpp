// Service-account tokens a node may mint (admitServiceAccount), and the events it may record.
#include <edgehub/authz/names.hpp>
#include <edgehub/authz/rules.hpp>

#include "json_access.hpp"

namespace edgehub::authz {

using detail::member;
using detail::shown;
using detail::text;

namespace {

const nlohmann::json& bound_ref(const nlohmann::json& request) {
  return member(member(request, "spec"), "boundObjectRef");
}

Decision binding(std::string_view node, std::string_view ns, std::string_view service_account,
                 const nlohmann::json& ref, const nlohmann::json& pod) {
  if (text(member(ref, "apiVersion")) != "v1" || text(member(ref, "kind")) != "Pod" ||
      !is_dns1123_subdomain(text(member(ref, "name")))) {
    return deny(Reason::token_binding, "node requested token not bound to a pod");
  }
  const auto uid = text(member(ref, "uid"));
  if (uid.empty()) {
    return deny(Reason::token_binding, "node requested token with a pod binding without a uid");
  }
  const auto& metadata = member(pod, "metadata");
  if (text(member(metadata, "uid")) != uid || text(member(metadata, "namespace")) != ns) {
    return deny(Reason::token_binding,
                "the UID in the bound object reference does not match the pod " +
                    std::string(ns) + "/" + shown(text(member(ref, "name"))));
  }
  const auto& spec = member(pod, "spec");
  if (text(member(spec, "nodeName")) != node) {
    return deny(Reason::token_binding,
                "node requested token bound to a pod scheduled on a different node");
  }
  auto account = text(member(spec, "serviceAccountName"));
  if (account.empty()) account = text(member(spec, "serviceAccount"));
  if (account.empty() || account != service_account) {
    return deny(Reason::token_binding, "service account " + shown(service_account) +
                                           " is not the bound pod's service account");
  }
  return allow();
}

}  // namespace

std::string bound_pod_name(const nlohmann::json& request) {
  auto name = text(member(bound_ref(request), "name"));
  return is_dns1123_subdomain(name) ? name : std::string();
}

TokenRequest token_request(std::string_view node, std::string_view ns,
                           std::string_view service_account, const nlohmann::json& request,
                           const nlohmann::json& pod, const TokenLimits& limits) {
  const auto& spec = member(request, "spec");
  if (!spec.is_object()) {
    return {deny(Reason::invalid_body, "a TokenRequest needs a spec"), {}};
  }
  const auto& ref = bound_ref(request);
  if (auto bound = binding(node, ns, service_account, ref, pod); !bound) return {bound, {}};

  std::int64_t expiration = limits.default_expiration_seconds;
  if (const auto& e = member(spec, "expirationSeconds"); !e.is_null()) {
    if (!e.is_number_integer()) {
      return {deny(Reason::invalid_body, "expirationSeconds is an integer"), {}};
    }
    expiration = e.get<std::int64_t>();
  }
  if (expiration < limits.min_expiration_seconds || expiration > limits.max_expiration_seconds) {
    return {deny(Reason::token_limits,
                 "expirationSeconds must be within [" +
                     std::to_string(limits.min_expiration_seconds) + ", " +
                     std::to_string(limits.max_expiration_seconds) + "]"),
            {}};
  }
  nlohmann::json audiences = nlohmann::json::array();
  if (const auto& a = member(spec, "audiences"); !a.is_null()) {
    if (!a.is_array() || a.size() > limits.max_audiences) {
      return {deny(Reason::token_limits, "audiences must be a list of at most " +
                                             std::to_string(limits.max_audiences)),
              {}};
    }
    for (const auto& audience : a) {
      if (!audience.is_string() || audience.get_ref<const std::string&>().empty() ||
          audience.get_ref<const std::string&>().size() > limits.max_audience_length) {
        return {deny(Reason::token_limits, "each audience must be a non-empty string of at most " +
                                               std::to_string(limits.max_audience_length) +
                                               " characters"),
                {}};
      }
      audiences.push_back(audience);
    }
  }
  nlohmann::json body = {
      {"apiVersion", "authentication.k8s.io/v1"},
      {"kind", "TokenRequest"},
      {"spec",
       {{"audiences", std::move(audiences)},
        {"expirationSeconds", expiration},
        {"boundObjectRef",
         {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"name", text(member(ref, "name"))},
          {"uid", text(member(ref, "uid"))}}}}}};
  return {allow(), std::move(body)};
}

EventSubject event_subject(std::string_view node, std::string_view ns, const nlohmann::json& event,
                           std::size_t serialized_size, std::size_t max_bytes) {
  EventSubject s;
  if (serialized_size > max_bytes) {
    s.decision = deny(Reason::too_large, "an event may have at most " +
                                             std::to_string(max_bytes) + " bytes");
    return s;
  }
  if (!event.is_object()) {
    s.decision = deny(Reason::invalid_body, "an event is an object");
    return s;
  }
  if (const auto event_ns = text(member(member(event, "metadata"), "namespace"));
      !event_ns.empty() && event_ns != ns) {
    s.decision = deny(Reason::invalid_name, "the event's namespace is not the request's");
    return s;
  }
  const auto& involved = member(event, "involvedObject");
  const auto kind = text(member(involved, "kind"));
  const auto name = text(member(involved, "name"));
  const auto object_ns = text(member(involved, "namespace"));
  if (kind == "Node" && name == node && object_ns.empty()) {
    s.node = true;
  } else if (kind == "Pod" && object_ns == ns && is_dns1123_subdomain(name)) {
    s.pod_name = name;
  } else {
    s.decision = deny(Reason::event_object, "node " + std::string(node) +
                                                " may only record events about itself and its "
                                                "pods, not " + shown(kind) + " " + shown(name));
  }
  return s;
}

}  // namespace edgehub::authz

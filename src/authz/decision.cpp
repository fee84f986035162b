#include <edgehub/authz/decision.hpp>
#include <edgehub/authz/names.hpp>
#include <edgehub/authz/rules.hpp>

#include "json_access.hpp"

namespace edgehub::authz {

std::string_view to_string(Reason reason) {
  switch (reason) {
    case Reason::allowed: return "allowed";
    case Reason::invalid_name: return "invalid_name";
    case Reason::invalid_body: return "invalid_body";
    case Reason::other_node: return "other_node";
    case Reason::not_mirror_pod: return "not_mirror_pod";
    case Reason::references: return "references";
    case Reason::labels: return "labels";
    case Reason::not_status: return "not_status";
    case Reason::config_source: return "config_source";
    case Reason::token_binding: return "token_binding";
    case Reason::token_limits: return "token_limits";
    case Reason::event_object: return "event_object";
    case Reason::too_large: return "too_large";
  }
  return "unknown";
}

Decision object_name(std::string_view ns, std::string_view name) {
  if (!ns.empty() && !is_dns1123_label(ns)) {
    return deny(Reason::invalid_name, "invalid namespace \"" + detail::shown(ns) + "\"");
  }
  if (!name.empty() && !is_dns1123_subdomain(name)) {
    return deny(Reason::invalid_name, "invalid name \"" + detail::shown(name) + "\"");
  }
  return allow();
}

}  // namespace edgehub::authz

#pragma once
// The answer of an authorization rule: allowed, or refused with a reason from a fixed list
// (a metric label) and a message for the Forbidden reply and the log.

#include <string>
#include <string_view>

namespace edgehub::authz {

enum class Reason {
  allowed,
  invalid_name,     // a namespace or name that is not a valid object name
  invalid_body,     // the request's content is not the object or patch it must be
  other_node,       // an object of another node (its Node, Lease, pod, device)
  not_mirror_pod,   // a pod create without the mirror-pod annotation or owner reference
  references,       // a mirror pod referencing secrets, configmaps, claims, a service account
  labels,           // a label outside the kubelet's set, or an immutable one changed
  not_status,       // a status write touching metadata or spec
  config_source,    // Node spec.configSource set or changed
  token_binding,    // a token request not bound to a pod of this node and its account
  token_limits,     // a token request's expiry or audiences out of bounds
  event_object,     // an event about an object that is not this node's
  too_large,        // content beyond the bound for its kind
};

std::string_view to_string(Reason reason);

struct Decision {
  Reason reason = Reason::allowed;
  std::string message;

  bool allowed() const { return reason == Reason::allowed; }
  explicit operator bool() const { return allowed(); }
};

inline Decision allow() { return {}; }
inline Decision deny(Reason reason, std::string message) { return {reason, std::move(message)}; }

}  // namespace edgehub::authz

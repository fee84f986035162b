#pragma once
// Resource strings of the wire protocol (KUBEEDGE-WIRE §3.1): `<ns>/<type>[/<name>]` with the
// literal namespace `null` for cluster-scoped objects, plus the device-twin and CA forms.

#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace edgehub::wire {

enum class ResourceForm {
  object,             // <ns>/<type>[/<name>]
  membership,         // membership
  membership_detail,  // membership/detail
  twin,               // twin (the resource of twin confirms)
  device_twin,        // device/<ns>/<name>/twin/edge_updated (and other twin events)
  device_state,       // device/<ns>/<name>/state/update
  k8s_ca,             // k8s/ca.crt
  keepalive,          // node (keepalive resource)
};

struct Resource {
  ResourceForm form = ResourceForm::object;
  std::string ns;     // empty for cluster-scoped (wire `null`)
  std::string type;   // pod, node, configmap, ... ; for device forms: "device"
  std::string name;   // may be empty (e.g. <ns>/podstatus)
  std::string event;  // device forms: "twin/edge_updated", "state/update"

  bool cluster_scoped() const { return ns.empty(); }
};

struct ResourceError {
  std::string resource;
  std::string message;
};

inline constexpr std::string_view kNullNamespace = "null";

boost::system::result<Resource, ResourceError> parse_resource(std::string_view text);

// `<ns>/<type>/<name>`, with `null` for an empty namespace.
std::string format_resource(std::string_view ns, std::string_view type, std::string_view name);

}  // namespace edgehub::wire

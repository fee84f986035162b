// The resource types the devapi server knows: group/version/resource, kind, scope.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace edgehub::devapi {

struct ResourceInfo {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural: "pods"
  std::string singular;  // "pod"
  std::string kind;      // "Pod"
  bool namespaced = true;
  bool has_status = false;  // has a `status` subresource
  std::vector<std::string> short_names;

  // "v1" for the core group, "<group>/<version>" otherwise.
  std::string api_version() const;
  // "pods" for the core group, "leases.coordination.k8s.io" otherwise (as in messages).
  std::string qualified_name() const;
};

// Every resource served, in discovery order.
const std::vector<ResourceInfo>& builtin_resources();

// nullptr when the group/version/resource is not served.
const ResourceInfo* find_resource(std::string_view group, std::string_view version,
                                  std::string_view resource);

// Looks up "pods", "leases.coordination.k8s.io", "nodesyncs.edgehub.io" (the resource's
// preferred version). Throws std::invalid_argument when unknown; meant for tests and tools.
const ResourceInfo& resource_by_name(std::string_view qualified_name);

}  // namespace edgehub::devapi

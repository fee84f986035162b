#include <edgehub/devapi/resources.hpp>
#include <stdexcept>

namespace edgehub::devapi {

std::string ResourceInfo::api_version() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceInfo::qualified_name() const {
  return group.empty() ? resource : resource + "." + group;
}

const std::vector<ResourceInfo>& builtin_resources() {
  static const std::vector<ResourceInfo> resources = {
      {"", "v1", "namespaces", "namespace", "Namespace", false, true, {"ns"}},
      {"", "v1", "nodes", "node", "Node", false, true, {"no"}},
      {"", "v1", "pods", "pod", "Pod", true, true, {"po"}},
      {"", "v1", "configmaps", "configmap", "ConfigMap", true, false, {"cm"}},
      {"", "v1", "secrets", "secret", "Secret", true, false, {}},
      {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, {"sa"}},
      {"", "v1", "events", "event", "Event", true, false, {"ev"}},
      {"coordination.k8s.io", "v1", "leases", "lease", "Lease", true, false, {}},
      {"devices.kubeedge.io", "v1beta1", "devices", "device", "Device", true, true, {}},
      {"devices.kubeedge.io",
       "v1beta1",
       "devicemodels",
       "devicemodel",
       "DeviceModel",
       true,
       false,
       {}},
      {"edgehub.io", "v1alpha1", "nodesyncs", "nodesync", "NodeSync", false, true, {}},
  };
  return resources;
}

const ResourceInfo* find_resource(std::string_view group, std::string_view version,
                                  std::string_view resource) {
  for (const auto& info : builtin_resources()) {
    if (info.group == group && info.version == version && info.resource == resource) {
      return &info;
    }
  }
  return nullptr;
}

const ResourceInfo& resource_by_name(std::string_view qualified_name) {
  for (const auto& info : builtin_resources()) {
    if (info.qualified_name() == qualified_name) return info;
  }
  throw std::invalid_argument("devapi: unknown resource " + std::string(qualified_name));
}

}  // namespace edgehub::devapi

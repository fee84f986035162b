#include "discovery.hpp"

#include <edgehub/devapi/resources.hpp>
#include <vector>

namespace edgehub::devapi::detail {

using nlohmann::json;

namespace {

std::vector<std::string> served_groups() {
  std::vector<std::string> groups;
  for (const auto& r : builtin_resources()) {
    if (r.group.empty()) continue;
    if (std::find(groups.begin(), groups.end(), r.group) == groups.end()) groups.push_back(r.group);
  }
  return groups;
}

std::string group_version(const std::string& group) {
  for (const auto& r : builtin_resources()) {
    if (r.group == group) return r.version;
  }
  return {};
}

json group_entry(const std::string& group) {
  const std::string version = group_version(group);
  const json gv = {{"groupVersion", group + "/" + version}, {"version", version}};
  return {{"name", group}, {"versions", json::array({gv})}, {"preferredVersion", gv}};
}

}  // namespace

json version_info() {
  return {
      {"major", "1"},          {"minor", "32"},           {"gitVersion", "v1.32.0-edgehub-devapi"},
      {"gitCommit", "devapi"}, {"gitTreeState", "clean"}, {"buildDate", "2026-01-01T00:00:00Z"},
      {"goVersion", "none"},   {"compiler", "edgehub"},   {"platform", "linux/amd64"}};
}

json api_versions(const std::string& server_address) {
  return {{"kind", "APIVersions"},
          {"versions", json::array({"v1"})},
          {"serverAddressByClientCIDRs",
           json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}})}};
}

json api_group_list() {
  json groups = json::array();
  for (const auto& group : served_groups()) groups.push_back(group_entry(group));
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<json> api_group(const std::string& group) {
  if (group_version(group).empty()) return std::nullopt;
  json entry = group_entry(group);
  entry["kind"] = "APIGroup";
  entry["apiVersion"] = "v1";
  return entry;
}

std::optional<json> api_resource_list(const std::string& group, const std::string& version) {
  json resources = json::array();
  for (const auto& r : builtin_resources()) {
    if (r.group != group || r.version != version) continue;
    json verbs = {"create", "delete", "deletecollection", "get",
                  "list",   "patch",  "update",           "watch"};
    json entry = {{"name", r.resource},
                  {"singularName", r.singular},
                  {"namespaced", r.namespaced},
                  {"kind", r.kind},
                  {"verbs", verbs}};
    if (!r.short_names.empty()) entry["shortNames"] = r.short_names;
    resources.push_back(entry);
    if (r.has_status) {
      resources.push_back({{"name", r.resource + "/status"},
                           {"singularName", ""},
                           {"namespaced", r.namespaced},
                           {"kind", r.kind},
                           {"verbs", json::array({"get", "patch", "update"})}});
    }
    if (r.resource == "serviceaccounts") {
      resources.push_back({{"name", "serviceaccounts/token"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"group", "authentication.k8s.io"},
                           {"version", "v1"},
                           {"kind", "TokenRequest"},
                           {"verbs", json::array({"create"})}});
    }
  }
  if (resources.empty()) return std::nullopt;
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", group.empty() ? version : group + "/" + version},
              {"resources", resources}};
}

}  // namespace edgehub::devapi::detail

namespace edgehub::devapi::detail {

json openapi_v3_root() {
  json paths = json::object();
  paths["api/v1"] = {{"serverRelativeURL", "/openapi/v3/api/v1?hash=devapi"}};
  for (const auto& group : served_groups()) {
    const std::string key = "apis/" + group + "/" + group_version(group);
    paths[key] = {{"serverRelativeURL", "/openapi/v3/" + key + "?hash=devapi"}};
  }
  return {{"paths", paths}};
}

std::optional<json> openapi_v3_group_version(const std::string& group, const std::string& version) {
  json paths = json::object();
  for (const auto& r : builtin_resources()) {
    if (r.group != group || r.version != version) continue;
    const std::string prefix = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
    const std::string item =
        prefix + (r.namespaced ? "/namespaces/{namespace}/" : "/") + r.resource + "/{name}";
    const json gvk = {{"group", group}, {"version", version}, {"kind", r.kind}};
    const json params = json::array(
        {{{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}},
         {{"name", "fieldManager"}, {"in", "query"}, {"schema", {{"type", "string"}}}}});
    const json responses = {{"200", {{"description", "OK"}}}};
    paths[item] = {{"patch",
                    {{"operationId", "patch" + r.kind},
                     {"parameters", params},
                     {"responses", responses},
                     {"x-kubernetes-action", "patch"},
                     {"x-kubernetes-group-version-kind", gvk}}}};
  }
  if (paths.empty()) return std::nullopt;
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes (edgehub devapi)"}, {"version", "v1.32.0"}}},
              {"paths", paths}};
}

}  // namespace edgehub::devapi::detail

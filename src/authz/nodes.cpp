// NodeRestriction's rules for a node's own Node object (admitNode) and its labels.
#include <edgehub/authz/rules.hpp>

#include <set>
#include <string>

#include "json_access.hpp"

namespace edgehub::authz {

using detail::member;
using detail::text;

namespace {

// The kubelet's own labels (k8s.io/kubelet/pkg/apis/well_known_labels.go).
constexpr std::string_view kKubeletLabels[] = {
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
};

std::string_view label_namespace(std::string_view key) {
  const auto slash = key.find('/');
  return slash == std::string_view::npos ? std::string_view() : key.substr(0, slash);
}

// `ns` is `domain` or a subdomain of it.
bool within(std::string_view ns, std::string_view domain) {
  return ns == domain || (ns.size() > domain.size() && ns.ends_with(domain) &&
                          ns[ns.size() - domain.size() - 1] == '.');
}

std::string joined(const std::set<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) {
    if (out.size() > 200) return out + ", ...";
    out += (out.empty() ? "" : ", ") + detail::shown(k);
  }
  return out;
}

Decision forbidden_labels(const std::set<std::string>& keys, std::string_view what) {
  if (keys.empty()) return allow();
  return deny(Reason::labels,
              "a node is not allowed to " + std::string(what) + " the labels " + joined(keys));
}

// A strategic-merge directive ($patch, $retainKeys, ...) among a map's keys.
bool has_directive(const nlohmann::json& map) {
  if (!map.is_object()) return false;
  for (const auto& [key, value] : map.items()) {
    if (key.starts_with("$")) return true;
  }
  return false;
}

}  // namespace

bool node_may_set_label(std::string_view key) {
  const auto ns = label_namespace(key);
  if (within(ns, "node-restriction.kubernetes.io")) return false;
  if (!within(ns, "kubernetes.io") && !within(ns, "k8s.io")) return true;
  for (auto allowed : kKubeletLabels) {
    if (key == allowed) return true;
  }
  return within(ns, "kubelet.kubernetes.io") || within(ns, "node.kubernetes.io");
}

bool is_kubeedge_role_label(std::string_view key) {
  return key == "node-role.kubernetes.io/edge" || key == "node-role.kubernetes.io/agent";
}

Decision node_create(std::string_view node, const nlohmann::json& body) {
  if (!body.is_null() && !body.is_object()) {
    return deny(Reason::invalid_body, "a Node is an object");
  }
  const auto& metadata = member(body, "metadata");
  if (const auto name = text(member(metadata, "name")); !name.empty() && name != node) {
    return deny(Reason::other_node,
                "node " + std::string(node) + " may not register node " + detail::shown(name));
  }
  if (!member(member(body, "spec"), "configSource").is_null()) {
    return deny(Reason::config_source,
                "node " + std::string(node) + " may not create its Node with a configSource");
  }
  const auto& labels = member(metadata, "labels");
  if (!labels.is_null() && !labels.is_object()) {
    return deny(Reason::invalid_body, "metadata.labels is a map");
  }
  std::set<std::string> forbidden;
  if (labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      if (node_may_set_label(key)) continue;
      if (is_kubeedge_role_label(key) && value == "") continue;
      forbidden.insert(key);
    }
  }
  return forbidden_labels(forbidden, "set");
}

Decision node_labels_update(const nlohmann::json& old_labels, const nlohmann::json& patch_labels) {
  if (patch_labels.is_null()) return allow();
  if (!patch_labels.is_object()) return deny(Reason::invalid_body, "metadata.labels is a map");
  std::set<std::string> forbidden;
  for (const auto& [key, value] : patch_labels.items()) {
    // Strategic-merge directives ($patch: replace, $retainKeys) would change keys not listed.
    if (key.starts_with("$")) {
      forbidden.insert(key);
      continue;
    }
    const auto& old = member(old_labels, key);
    if (value == old) continue;  // unchanged (null: absent before, removed now)
    if (!node_may_set_label(key)) forbidden.insert(key);
  }
  return forbidden_labels(forbidden, "modify");
}

bool patch_touches_labels(const nlohmann::json& patch) {
  return !member(member(patch, "metadata"), "labels").is_null();
}

Decision node_status_patch(const nlohmann::json& patch, const nlohmann::json& old_labels) {
  if (!patch.is_object()) return deny(Reason::invalid_body, "a node status patch is an object");
  for (const auto& [key, value] : patch.items()) {
    if (key == "status") {
      if (!value.is_object()) return deny(Reason::invalid_body, "status is an object");
      continue;
    }
    if (key != "metadata" || !value.is_object()) {
      return deny(Reason::not_status,
                  "a node status patch may change status only, not " + detail::shown(key));
    }
    for (const auto& [field, v] : value.items()) {
      if (field == "uid" || field == "resourceVersion" || field == "labels") continue;
      if (field == "annotations" && (v.is_object() || v.is_null())) {
        if (has_directive(v)) {
          return deny(Reason::not_status, "no patch directives in metadata.annotations");
        }
        continue;
      }
      return deny(Reason::not_status,
                  "a node status patch may not change metadata." + detail::shown(field));
    }
    if (auto labels = node_labels_update(old_labels, member(value, "labels")); !labels) {
      return labels;
    }
  }
  return allow();
}

}  // namespace edgehub::authz

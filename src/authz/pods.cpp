// NodeRestriction's rules for pods a node creates (mirror pods) and for their status.
#include <edgehub/authz/rules.hpp>

#include "json_access.hpp"

namespace edgehub::authz {

using detail::empty;
using detail::member;
using detail::text;

namespace {

constexpr std::string_view kMirrorAnnotation = "kubernetes.io/config.mirror";

// Volume sources that name another API object or hand the pod a credential: Secrets and
// ConfigMaps (directly or projected), claims, ClusterTrustBundles, service-account tokens, and
// the secret references of the volume plugins (azureFile's secretName; cephfs, cinder,
// flexVolume, iscsi, rbd, scaleIO, storageos's secretRef; csi's nodePublishSecretRef).
std::string volume_reference(const nlohmann::json& volume) {
  for (const char* source : {"secret", "configMap", "persistentVolumeClaim", "ephemeral"}) {
    if (!member(volume, source).is_null()) return source;
  }
  const auto& projected = member(volume, "projected");
  if (!projected.is_null()) {
    const auto& sources = member(projected, "sources");
    if (!sources.is_null() && !sources.is_array()) return "projected";
    for (const auto& s : sources.is_array() ? sources : nlohmann::json::array()) {
      for (const char* kind :
           {"secret", "configMap", "clusterTrustBundle", "serviceAccountToken", "podCertificate"}) {
        if (!member(s, kind).is_null()) return std::string("projected ") + kind;
      }
    }
  }
  if (!volume.is_object()) return "volume";
  for (const auto& [type, source] : volume.items()) {
    for (const char* key : {"secretRef", "secretName", "nodePublishSecretRef"}) {
      if (!member(source, key).is_null()) return type + "." + key;
    }
  }
  return {};
}

std::string container_reference(const nlohmann::json& container) {
  const auto& env_from = member(container, "envFrom");
  for (const auto& e : env_from.is_array() ? env_from : nlohmann::json::array()) {
    if (!member(e, "secretRef").is_null()) return "envFrom.secretRef";
    if (!member(e, "configMapRef").is_null()) return "envFrom.configMapRef";
  }
  const auto& env = member(container, "env");
  for (const auto& e : env.is_array() ? env : nlohmann::json::array()) {
    const auto& from = member(e, "valueFrom");
    if (!member(from, "secretKeyRef").is_null()) return "env.valueFrom.secretKeyRef";
    if (!member(from, "configMapKeyRef").is_null()) return "env.valueFrom.configMapKeyRef";
  }
  return {};
}

// The first API object the pod spec references, or empty.
std::string spec_reference(const nlohmann::json& spec) {
  if (!text(member(spec, "serviceAccountName")).empty() ||
      !text(member(spec, "serviceAccount")).empty()) {
    return "service account";
  }
  if (!empty(member(spec, "imagePullSecrets"))) return "imagePullSecrets";
  if (!empty(member(spec, "resourceClaims"))) return "resourceClaims";
  const auto& volumes = member(spec, "volumes");
  for (const auto& v : volumes.is_array() ? volumes : nlohmann::json::array()) {
    if (auto ref = volume_reference(v); !ref.empty()) return "volume " + ref;
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    const auto& containers = member(spec, list);
    for (const auto& c : containers.is_array() ? containers : nlohmann::json::array()) {
      if (auto ref = container_reference(c); !ref.empty()) return std::string(list) + " " + ref;
    }
  }
  return {};
}

Decision owner_is_node(std::string_view node, std::string_view node_uid,
                       const nlohmann::json& owners) {
  const std::string who = "node " + std::string(node);
  if (!owners.is_array() || owners.size() != 1) {
    return deny(Reason::not_mirror_pod,
                who + " can only create pods with a single owner reference set to itself");
  }
  const auto& owner = owners[0];
  if (text(member(owner, "apiVersion")) != "v1" || text(member(owner, "kind")) != "Node" ||
      text(member(owner, "name")) != node) {
    return deny(Reason::not_mirror_pod,
                who + " can only create pods with an owner reference set to itself");
  }
  if (member(owner, "controller") != true) {
    return deny(Reason::not_mirror_pod,
                who + " can only create pods with a controller owner reference set to itself");
  }
  if (member(owner, "blockOwnerDeletion") == true) {
    return deny(Reason::not_mirror_pod, who + " must not set blockOwnerDeletion");
  }
  if (node_uid.empty() || text(member(owner, "uid")) != node_uid) {
    return deny(Reason::not_mirror_pod, who + " owner reference UID does not match its Node");
  }
  return allow();
}

}  // namespace

Decision mirror_pod_create(std::string_view node, std::string_view node_uid,
                           const nlohmann::json& pod) {
  const std::string who = "node " + std::string(node);
  const auto& metadata = member(pod, "metadata");
  const auto& spec = member(pod, "spec");
  if (!metadata.is_object() || !spec.is_object()) {
    return deny(Reason::invalid_body, "a pod needs metadata and spec");
  }
  if (member(member(metadata, "annotations"), kMirrorAnnotation).is_null()) {
    return deny(Reason::not_mirror_pod,
                who + " can only create mirror pods (annotation kubernetes.io/config.mirror)");
  }
  if (text(member(spec, "nodeName")) != node) {
    return deny(Reason::other_node, who + " can only create pods with spec.nodeName set to itself");
  }
  if (auto owner = owner_is_node(node, node_uid, member(metadata, "ownerReferences")); !owner) {
    return owner;
  }
  if (auto ref = spec_reference(spec); !ref.empty()) {
    return deny(Reason::references, who + " can not create pods that reference other API " +
                                         "objects (" + ref + ")");
  }
  return allow();
}

Decision pod_status_patch(const nlohmann::json& patch) {
  if (!patch.is_object()) return deny(Reason::invalid_body, "a pod status patch is an object");
  for (const auto& [key, value] : patch.items()) {
    if (key == "status") {
      if (!value.is_object()) return deny(Reason::invalid_body, "status is an object");
      if (value.contains("resourceClaimStatuses")) {
        return deny(Reason::not_status, "a node cannot update resource claim statuses");
      }
      continue;
    }
    if (key == "metadata" && value.is_object()) {
      for (const auto& [field, v] : value.items()) {
        if (field != "uid" && field != "resourceVersion") {
          return deny(Reason::not_status, "a pod status patch may not change metadata." +
                                              detail::shown(field));
        }
      }
      continue;
    }
    return deny(Reason::not_status, "a pod status patch may change status only, not " +
                                        detail::shown(key));
  }
  return allow();
}

}  // namespace edgehub::authz

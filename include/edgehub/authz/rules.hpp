#pragma once
// What a node may write, mirroring Kubernetes' NodeRestriction admission plugin
// (plugin/pkg/admission/noderestriction) for the requests edgehub makes on an edge's behalf.
// Pure functions over the request's JSON and the objects the caller read from the API; the
// caller (hub::Upstream) fetches what a rule needs, asks, and answers Forbidden on a refusal.

#include <cstdint>
#include <edgehub/authz/decision.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace edgehub::authz {

// ---- names ----
// A namespaced object's namespace and name from an edge message (either may be empty where
// the message has none, e.g. `<ns>/podstatus`).
Decision object_name(std::string_view ns, std::string_view name);

// ---- pods ----
// A node creating a pod (admitPodCreate): a mirror pod (annotation kubernetes.io/config.mirror)
// bound to the node, with exactly one owner reference: its own Node (v1, name, the Node's
// `node_uid`), controller, not blocking deletion; no service account, and no reference to a
// Secret, ConfigMap, PersistentVolumeClaim, ephemeral volume, ClusterTrustBundle, projected
// service-account token or ResourceClaim — objects a pod on the node would give it access to.
Decision mirror_pod_create(std::string_view node, std::string_view node_uid,
                           const nlohmann::json& pod);

// A patch through pods/status (admitPodStatus): status only — `metadata` may carry just the
// `uid`/`resourceVersion` preconditions edged sends; no labels (NodeRestriction's rule),
// annotations, owners, spec or top-level patch directives; status.resourceClaimStatuses is
// not the node's to write.
Decision pod_status_patch(const nlohmann::json& patch);

// ---- nodes ----
// Labels a node may not add, change or remove on its own Node (getForbiddenLabels):
// node-restriction.kubernetes.io/*, and any other kubernetes.io / k8s.io label that is not one
// of the kubelet's (kubernetes.io/hostname, os, arch, topology, instance type,
// kubelet.kubernetes.io/*, node.kubernetes.io/*).
bool node_may_set_label(std::string_view key);
// KubeEdge's role labels edgecore sets at registration (edgehub finds edge nodes by
// node-role.kubernetes.io/edge): allowed with the value "" when the Node is created, never
// changed or removed afterwards.
bool is_kubeedge_role_label(std::string_view key);

// A node registering its own Node (admitNode, create).
Decision node_create(std::string_view node, const nlohmann::json& body);
// A node changing its Node's labels (admitNode, update): `old_labels` as stored, `patch_labels`
// a merge-patch map (null removes a key).
Decision node_labels_update(const nlohmann::json& old_labels, const nlohmann::json& patch_labels);
// A strategic-merge patch through nodes/status (edged's nodepatch): status, plus the labels and
// annotations kubelet re-applies when it re-registers (checked as node_labels_update against
// `old_labels`); no spec (taints, configSource, podCIDR) and no other metadata.
Decision node_status_patch(const nlohmann::json& patch, const nlohmann::json& old_labels);
// Whether node_status_patch needs the Node's current labels.
bool patch_touches_labels(const nlohmann::json& patch);

// ---- tokens ----
struct TokenLimits {
  std::int64_t min_expiration_seconds = 600;      // the API's (and kubelet's) minimum
  std::int64_t max_expiration_seconds = 48 * 3600;
  std::int64_t default_expiration_seconds = 3600;
  std::size_t max_audiences = 16;
  std::size_t max_audience_length = 1024;
};

// The TokenRequest the hub sends: built from checked fields only.
struct TokenRequest {
  Decision decision;
  nlohmann::json body;  // authentication.k8s.io/v1 TokenRequest, when allowed
};

// The pod named by the edge's `spec.boundObjectRef` (read from the API by the caller).
// Mirrors admitServiceAccount (a Pod binding with the pod's UID, the pod on this node) and
// adds: the account is the pod's own, in the pod's namespace; expiry and audiences bounded.
TokenRequest token_request(std::string_view node, std::string_view ns,
                           std::string_view service_account, const nlohmann::json& request,
                           const nlohmann::json& pod, const TokenLimits& limits = {});
// The pod a token request binds to: its namespace is the request's, its name from
// spec.boundObjectRef (empty when there is none or it is not a valid name).
std::string bound_pod_name(const nlohmann::json& request);

// ---- events ----
// What an event is about, to be checked by the caller: this node, or a pod in `ns`.
struct EventSubject {
  Decision decision;
  bool node = false;     // about this node's Node
  std::string pod_name;  // about this pod in the event's namespace (the caller checks binding)
};
// An event a node records (kubelet may create events; system:node RBAC): in `ns`, about
// the node itself or a pod in that namespace, at most `max_bytes` of JSON.
EventSubject event_subject(std::string_view node, std::string_view ns, const nlohmann::json& event,
                           std::size_t serialized_size, std::size_t max_bytes = 16 * 1024);

}  // namespace edgehub::authz

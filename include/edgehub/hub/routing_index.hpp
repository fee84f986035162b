#pragma once
// RoutingIndex: what each owned node's pods reference, the way the Kubernetes node
// authorizer sees it. It answers "may node N read configmap C?", "which owned nodes need
// secret S?" and "is pod P bound to N?", for owned nodes only, so its size follows the
// connected nodes, not the cluster. Lives on the API thread; not thread-safe.

#include <chrono>
#include <edgehub/kube/object.hpp>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace edgehub::hub {

// What a pod needs from the API besides itself.
struct PodRefs {
  std::string ns;
  std::string name;
  std::string uid;
  std::string node;
  std::set<std::string> configmaps;  // names in the pod's namespace
  std::set<std::string> secrets;
  std::set<std::string> service_accounts;

  bool operator==(const PodRefs&) const = default;
};

// Reads volumes, env/envFrom, projected sources, imagePullSecrets and serviceAccountName.
PodRefs pod_refs(const kube::Object& pod);

enum class RefKind { configmap, secret };

// A (kind, namespace, name) newly needed by a node, to be fetched and sent to it.
struct NewRef {
  RefKind kind;
  std::string ns;
  std::string name;
  bool operator<(const NewRef& o) const {
    return std::tie(kind, ns, name) < std::tie(o.kind, o.ns, o.name);
  }
  bool operator==(const NewRef&) const = default;
};

class RoutingIndex {
 public:
  // Replaces everything known about `node`'s pods (a resync); returns references it did not
  // have before. Pods whose uid is in `keep` stay as the index knows them (present or absent)
  // whatever `pods` says: watch events newer than the resync's list already decided them.
  std::vector<NewRef> set_pods(const std::string& node, const std::vector<PodRefs>& pods,
                               const std::unordered_set<std::string>* keep = nullptr);
  // Adds or updates one pod of an owned node; returns the references new for that node, and
  // adds to `dropped` those the node no longer needs.
  std::vector<NewRef> upsert_pod(const PodRefs& pod, std::vector<NewRef>* dropped = nullptr);
  void remove_pod(const std::string& node, const std::string& uid,
                  std::vector<NewRef>* dropped = nullptr);
  // Forgets a node no longer owned here.
  void drop_node(const std::string& node);

  bool has_pod(const std::string& node, const std::string& ns, const std::string& name) const;
  bool references(const std::string& node, RefKind kind, const std::string& ns,
                  const std::string& name) const;
  bool uses_service_account(const std::string& node, const std::string& ns,
                            const std::string& sa) const;
  // Owned nodes whose pods reference the object.
  std::vector<std::string> nodes_referencing(RefKind kind, const std::string& ns,
                                             const std::string& name) const;
  // Every configmap and secret the node's pods reference.
  std::set<NewRef> refs_of(const std::string& node) const;
  std::size_t pods(const std::string& node) const;
  std::size_t nodes() const { return nodes_.size(); }

 private:
  using RefKey = std::tuple<RefKind, std::string, std::string>;
  struct NodeState {
    std::unordered_map<std::string, PodRefs> pods;  // by uid
    std::map<RefKey, int> refs;                    // reference counts
  };
  void add_refs(NodeState& n, const std::string& node, const PodRefs& pod, std::vector<NewRef>* fresh);
  void remove_refs(NodeState& n, const std::string& node, const PodRefs& pod,
                   std::vector<NewRef>* dropped);

  std::unordered_map<std::string, NodeState> nodes_;
  std::map<RefKey, std::set<std::string>> by_ref_;  // reverse index: object → nodes
};

}  // namespace edgehub::hub

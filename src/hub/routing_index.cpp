#include <edgehub/hub/routing_index.hpp>

namespace edgehub::hub {

namespace {

void add_name(std::set<std::string>& to, const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return;
  const auto it = j.find(key);
  if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
    to.insert(it->get<std::string>());
  }
}

void scan_containers(PodRefs& refs, const nlohmann::json& containers) {
  if (!containers.is_array()) return;
  for (const auto& c : containers) {
    if (!c.is_object()) continue;
    if (auto env = c.find("env"); env != c.end() && env->is_array()) {
      for (const auto& e : *env) {
        if (!e.is_object()) continue;
        const auto from = e.find("valueFrom");
        if (from == e.end() || !from->is_object()) continue;
        if (auto cm = from->find("configMapKeyRef"); cm != from->end()) add_name(refs.configmaps, *cm, "name");
        if (auto s = from->find("secretKeyRef"); s != from->end()) add_name(refs.secrets, *s, "name");
      }
    }
    if (auto env_from = c.find("envFrom"); env_from != c.end() && env_from->is_array()) {
      for (const auto& e : *env_from) {
        if (!e.is_object()) continue;
        if (auto cm = e.find("configMapRef"); cm != e.end()) add_name(refs.configmaps, *cm, "name");
        if (auto s = e.find("secretRef"); s != e.end()) add_name(refs.secrets, *s, "name");
      }
    }
  }
}

}  // namespace

PodRefs pod_refs(const kube::Object& pod) {
  PodRefs refs;
  refs.ns = pod.meta.namespace_;
  refs.name = pod.meta.name;
  refs.uid = pod.meta.uid;
  refs.node = pod.node_name;
  const auto j = pod.json();
  const auto spec_it = j.is_object() ? j.find("spec") : j.end();
  if (!j.is_object() || spec_it == j.end() || !spec_it->is_object()) return refs;
  const auto& spec = *spec_it;
  if (auto v = spec.find("volumes"); v != spec.end() && v->is_array()) {
    for (const auto& vol : *v) {
      if (!vol.is_object()) continue;
      if (auto cm = vol.find("configMap"); cm != vol.end()) add_name(refs.configmaps, *cm, "name");
      if (auto s = vol.find("secret"); s != vol.end()) add_name(refs.secrets, *s, "secretName");
      if (auto p = vol.find("projected"); p != vol.end() && p->is_object()) {
        if (auto sources = p->find("sources"); sources != p->end() && sources->is_array()) {
          for (const auto& src : *sources) {
            if (!src.is_object()) continue;
            if (auto cm = src.find("configMap"); cm != src.end()) add_name(refs.configmaps, *cm, "name");
            if (auto s = src.find("secret"); s != src.end()) add_name(refs.secrets, *s, "name");
          }
        }
      }
    }
  }
  for (const char* list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (auto c = spec.find(list); c != spec.end()) scan_containers(refs, *c);
  }
  if (auto ips = spec.find("imagePullSecrets"); ips != spec.end() && ips->is_array()) {
    for (const auto& s : *ips) add_name(refs.secrets, s, "name");
  }
  std::set<std::string> sa;
  add_name(sa, spec, "serviceAccountName");
  refs.service_accounts = sa.empty() ? std::set<std::string>{"default"} : sa;
  return refs;
}

void RoutingIndex::add_refs(NodeState& n, const std::string& node, const PodRefs& pod,
                            std::vector<NewRef>* fresh) {
  const auto add = [&](RefKind kind, const std::string& name) {
    RefKey key{kind, pod.ns, name};
    if (n.refs[key]++ == 0) {
      by_ref_[key].insert(node);
      if (fresh) fresh->push_back(NewRef{kind, pod.ns, name});
    }
  };
  for (const auto& c : pod.configmaps) add(RefKind::configmap, c);
  for (const auto& s : pod.secrets) add(RefKind::secret, s);
}

void RoutingIndex::remove_refs(NodeState& n, const std::string& node, const PodRefs& pod,
                               std::vector<NewRef>* dropped) {
  const auto drop = [&](RefKind kind, const std::string& name) {
    RefKey key{kind, pod.ns, name};
    auto it = n.refs.find(key);
    if (it == n.refs.end() || --it->second > 0) return;
    n.refs.erase(it);
    if (dropped) dropped->push_back(NewRef{kind, pod.ns, name});
    auto r = by_ref_.find(key);
    if (r == by_ref_.end()) return;
    r->second.erase(node);
    if (r->second.empty()) by_ref_.erase(r);
  };
  for (const auto& c : pod.configmaps) drop(RefKind::configmap, c);
  for (const auto& s : pod.secrets) drop(RefKind::secret, s);
}

std::vector<NewRef> RoutingIndex::set_pods(const std::string& node,
                                           const std::vector<PodRefs>& pods,
                                           const std::unordered_set<std::string>* keep) {
  std::set<NewRef> before;
  std::vector<PodRefs> kept;
  if (auto it = nodes_.find(node); it != nodes_.end()) {
    for (const auto& [key, count] : it->second.refs) {
      before.insert(NewRef{std::get<0>(key), std::get<1>(key), std::get<2>(key)});
    }
    if (keep != nullptr) {
      for (const auto& [uid, pod] : it->second.pods) {
        if (keep->contains(uid)) kept.push_back(pod);
      }
    }
  }
  drop_node(node);
  auto& n = nodes_[node];
  std::vector<NewRef> all;
  for (const auto& pod : pods) {
    if (keep != nullptr && keep->contains(pod.uid)) continue;
    n.pods[pod.uid] = pod;
    add_refs(n, node, pod, &all);
  }
  for (const auto& pod : kept) {
    n.pods[pod.uid] = pod;
    add_refs(n, node, pod, &all);
  }
  std::vector<NewRef> fresh;
  for (const auto& r : all) {
    if (!before.contains(r)) fresh.push_back(r);
  }
  return fresh;
}

std::vector<NewRef> RoutingIndex::upsert_pod(const PodRefs& pod, std::vector<NewRef>* dropped) {
  auto& n = nodes_[pod.node];
  std::vector<NewRef> fresh;
  auto it = n.pods.find(pod.uid);
  if (it != n.pods.end()) {
    if (it->second == pod) return fresh;
    // Add the new references before dropping the old, so a kept one never blinks out.
    add_refs(n, pod.node, pod, &fresh);
    remove_refs(n, pod.node, it->second, dropped);
    it->second = pod;
  } else {
    add_refs(n, pod.node, pod, &fresh);
    n.pods.emplace(pod.uid, pod);
  }
  return fresh;
}

void RoutingIndex::remove_pod(const std::string& node, const std::string& uid,
                              std::vector<NewRef>* dropped) {
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return;
  auto it = n->second.pods.find(uid);
  if (it == n->second.pods.end()) return;
  remove_refs(n->second, node, it->second, dropped);
  n->second.pods.erase(it);
}

void RoutingIndex::drop_node(const std::string& node) {
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return;
  for (const auto& [key, count] : n->second.refs) {
    auto r = by_ref_.find(key);
    if (r == by_ref_.end()) continue;
    r->second.erase(node);
    if (r->second.empty()) by_ref_.erase(r);
  }
  nodes_.erase(n);
}

bool RoutingIndex::has_pod(const std::string& node, const std::string& ns,
                           const std::string& name) const {
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return false;
  for (const auto& [uid, pod] : n->second.pods) {
    if (pod.ns == ns && pod.name == name) return true;
  }
  return false;
}

bool RoutingIndex::references(const std::string& node, RefKind kind, const std::string& ns,
                              const std::string& name) const {
  auto n = nodes_.find(node);
  return n != nodes_.end() && n->second.refs.contains(RefKey{kind, ns, name});
}

bool RoutingIndex::uses_service_account(const std::string& node, const std::string& ns,
                                        const std::string& sa) const {
  auto n = nodes_.find(node);
  if (n == nodes_.end()) return false;
  for (const auto& [uid, pod] : n->second.pods) {
    if (pod.ns == ns && pod.service_accounts.contains(sa)) return true;
  }
  return false;
}

std::vector<std::string> RoutingIndex::nodes_referencing(RefKind kind, const std::string& ns,
                                                         const std::string& name) const {
  auto it = by_ref_.find(RefKey{kind, ns, name});
  if (it == by_ref_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::set<NewRef> RoutingIndex::refs_of(const std::string& node) const {
  std::set<NewRef> out;
  if (const auto n = nodes_.find(node); n != nodes_.end()) {
    for (const auto& [key, count] : n->second.refs) {
      out.insert(NewRef{std::get<0>(key), std::get<1>(key), std::get<2>(key)});
    }
  }
  return out;
}

std::size_t RoutingIndex::pods(const std::string& node) const {
  auto n = nodes_.find(node);
  return n == nodes_.end() ? 0 : n->second.pods.size();
}

}  // namespace edgehub::hub

#include "checker.hpp"

#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace edgehub::e2e {

namespace {

struct Version {
  std::string uid;
  std::string rv;
};
// "Kind ns/name"
using Objects = std::map<std::string, Version>;

std::string key(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + " " + (ns.empty() ? name : ns + "/" + name);
}

std::string meta(const json& object, const char* field) {
  const auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return {};
  const auto f = m->find(field);
  return f != m->end() && f->is_string() ? f->get<std::string>() : std::string();
}

json items(Api& api, const std::string& target) {
  const auto reply = api.get(target);
  if (!reply.ok() || !reply.body.contains("items")) {
    throw std::runtime_error("e2e: list " + target + " failed: " + std::to_string(reply.status) +
                             " " + reply.body.dump().substr(0, 300));
  }
  return reply.body["items"];
}

// What a pod references, as the node authorizer and the hub see it.
void pod_refs(const json& pod, std::set<std::string>& configmaps, std::set<std::string>& secrets) {
  const json spec = pod.value("spec", json::object());
  auto name_of = [](const json& j, const char* field) {
    return j.is_object() && j.contains(field) && j[field].is_string() ? j[field].get<std::string>()
                                                                      : std::string();
  };
  for (const auto& v : spec.value("volumes", json::array())) {
    if (v.contains("configMap")) configmaps.insert(name_of(v["configMap"], "name"));
    if (v.contains("secret")) secrets.insert(name_of(v["secret"], "secretName"));
    if (v.contains("projected")) {
      for (const auto& s : v["projected"].value("sources", json::array())) {
        if (s.contains("configMap")) configmaps.insert(name_of(s["configMap"], "name"));
        if (s.contains("secret")) secrets.insert(name_of(s["secret"], "name"));
      }
    }
  }
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : spec.value(list, json::array())) {
      for (const auto& e : c.value("env", json::array())) {
        const json from = e.value("valueFrom", json::object());
        if (from.contains("configMapKeyRef")) configmaps.insert(name_of(from["configMapKeyRef"], "name"));
        if (from.contains("secretKeyRef")) secrets.insert(name_of(from["secretKeyRef"], "name"));
      }
      for (const auto& e : c.value("envFrom", json::array())) {
        if (e.contains("configMapRef")) configmaps.insert(name_of(e["configMapRef"], "name"));
        if (e.contains("secretRef")) secrets.insert(name_of(e["secretRef"], "name"));
      }
    }
  }
  configmaps.erase("");
  secrets.erase("");
}

void add_problem(CheckResult& r, std::string text) {
  ++r.problem_count;
  if (r.problems.size() < 40) r.problems.push_back(std::move(text));
}

}  // namespace

std::string CheckResult::summary(std::size_t max_lines) const {
  std::ostringstream out;
  out << problem_count << " problem(s) on " << nodes_diverged << " node(s), " << objects_compared
      << " object(s) compared";
  for (std::size_t i = 0; i < problems.size() && i < max_lines; ++i) out << "\n  " << problems[i];
  return out.str();
}

CheckResult check_convergence(Api& api, const json& fleet_state,
                              const std::vector<std::string>& nodes) {
  const std::string ns = Cluster::kNamespace;
  // Desired state, from the API.
  std::map<std::string, json> pods_by_node;
  for (auto& pod : items(api, "/api/v1/namespaces/" + ns + "/pods")) {
    const std::string node = pod.value("/spec/nodeName"_json_pointer, "");
    if (!node.empty()) pods_by_node[node].push_back(std::move(pod));
  }
  std::map<std::string, Version> configmaps, secrets, node_objects;
  for (const auto& o : items(api, "/api/v1/namespaces/" + ns + "/configmaps")) {
    configmaps[meta(o, "name")] = {meta(o, "uid"), meta(o, "resourceVersion")};
  }
  for (const auto& o : items(api, "/api/v1/namespaces/" + ns + "/secrets")) {
    secrets[meta(o, "name")] = {meta(o, "uid"), meta(o, "resourceVersion")};
  }
  for (const auto& o : items(api, "/api/v1/nodes")) {
    node_objects[meta(o, "name")] = {meta(o, "uid"), meta(o, "resourceVersion")};
  }
  // Devices bound to each node, and the models they use.
  std::map<std::string, std::vector<json>> devices_by_node;
  std::map<std::string, Version> models;
  for (auto& d : items(api, "/apis/devices.kubeedge.io/v1beta1/namespaces/" + ns + "/devices")) {
    const std::string node = d.value("/spec/nodeName"_json_pointer, "");
    if (!node.empty()) devices_by_node[node].push_back(std::move(d));
  }
  for (const auto& m : items(api, "/apis/devices.kubeedge.io/v1beta1/namespaces/" + ns + "/devicemodels")) {
    models[meta(m, "name")] = {meta(m, "uid"), meta(m, "resourceVersion")};
  }
  // What the edges hold, from the simulator.
  std::map<std::string, const json*> held_by_node;
  if (fleet_state.contains("nodes")) {
    for (const auto& n : fleet_state["nodes"]) held_by_node[n.value("name", "")] = &n;
  }

  CheckResult result;
  for (const auto& node : nodes) {
    Objects desired;
    std::set<std::string> cm_refs, secret_refs;
    for (const auto& pod : pods_by_node[node]) {
      desired[key("Pod", ns, meta(pod, "name"))] = {meta(pod, "uid"), meta(pod, "resourceVersion")};
      pod_refs(pod, cm_refs, secret_refs);
    }
    for (const auto& name : cm_refs) {
      if (auto it = configmaps.find(name); it != configmaps.end()) {
        desired[key("ConfigMap", ns, name)] = it->second;
      }
    }
    for (const auto& name : secret_refs) {
      if (auto it = secrets.find(name); it != secrets.end()) {
        desired[key("Secret", ns, name)] = it->second;
      }
    }
    if (auto it = node_objects.find(node); it != node_objects.end()) {
      desired[key("Node", "", node)] = it->second;
    }
    std::set<std::string> members;
    for (const auto& d : devices_by_node[node]) {
      desired[key("Device", ns, meta(d, "name"))] = {meta(d, "uid"), meta(d, "resourceVersion")};
      members.insert(ns + "/" + meta(d, "name"));
      const std::string model = d.value("/spec/deviceModelRef/name"_json_pointer, "");
      if (auto it = models.find(model); it != models.end()) {
        desired[key("DeviceModel", ns, model)] = it->second;
      }
    }

    Objects held;
    const auto h = held_by_node.find(node);
    if (h == held_by_node.end()) {
      add_problem(result, node + ": not in the simulator's state");
      ++result.nodes_diverged;
      continue;
    }
    for (const auto& o : (*h->second).value("objects", json::array())) {
      const std::string kind = o.value("kind", "");
      if (kind != "Pod" && kind != "ConfigMap" && kind != "Secret" && kind != "Node" &&
          kind != "Device" && kind != "DeviceModel") {
        continue;
      }
      if (o.value("deleted", false)) continue;
      held[key(kind, o.value("namespace", ""), o.value("name", ""))] = {o.value("uid", ""),
                                                                        o.value("resourceVersion", "")};
    }
    const std::size_t before = result.problem_count;
    // The edge's device twin membership: exactly the devices bound to the node.
    std::set<std::string> held_members;
    for (const auto& m : (*h->second).value("devices", json::array())) {
      if (m.is_string()) held_members.insert(m.get<std::string>());
    }
    if (held_members != members) {
      std::string want_list, have_list;
      for (const auto& m : members) want_list += " " + m;
      for (const auto& m : held_members) have_list += " " + m;
      add_problem(result, node + ": device membership {" + have_list + " }, API {" + want_list + " }");
    }
    for (const auto& [k, want] : desired) {
      ++result.objects_compared;
      const auto it = held.find(k);
      if (it == held.end()) {
        add_problem(result, node + ": missing " + k + " (API rv " + want.rv + ")");
      } else if (it->second.uid != want.uid) {
        add_problem(result, node + ": " + k + " has uid " + it->second.uid + ", API " + want.uid);
      } else if (it->second.rv != want.rv) {
        add_problem(result, node + ": " + k + " at rv " + it->second.rv + ", API rv " + want.rv);
      }
    }
    for (const auto& [k, have] : held) {
      if (!desired.contains(k)) {
        add_problem(result, node + ": extra " + k + " (rv " + have.rv + "): the API has it no "
                            "longer or not for this node");
      }
    }
    if (result.problem_count != before) ++result.nodes_diverged;
  }
  return result;
}

CheckResult check_ownership(Cluster& cluster) {
  CheckResult result;
  const auto sessions = cluster.sessions();
  std::map<std::string, std::string> owners;
  const auto reply = cluster.api().get("/apis/edgehub.io/v1alpha1/nodesyncs");
  if (reply.ok() && reply.body.contains("items")) {
    for (const auto& ns : reply.body["items"]) {
      owners[meta(ns, "name")] = ns.value("/status/owner"_json_pointer, "");
    }
  } else {
    add_problem(result, "cannot list NodeSyncs: " + std::to_string(reply.status));
  }
  const json state = cluster.fleet_state();
  std::map<std::string, const json*> sim_nodes;
  if (state.contains("nodes")) {
    for (const auto& n : state["nodes"]) sim_nodes[n.value("name", "")] = &n;
  }
  for (const auto& node : cluster.node_names()) {
    const std::size_t before = result.problem_count;
    ++result.objects_compared;
    const auto [first, last] = sessions.equal_range(node);
    std::vector<std::string> holders;
    for (auto it = first; it != last; ++it) holders.push_back(it->second);
    std::string holder_list;
    for (const auto& h : holders) holder_list += (holder_list.empty() ? "" : ", ") + h;
    const auto owner_it = owners.find(node);
    const std::string owner = owner_it == owners.end() ? std::string() : owner_it->second;
    if (holders.size() > 1) add_problem(result, node + ": held by several replicas: " + holder_list);
    if (holders.empty()) add_problem(result, node + ": held by no live replica (/debug/nodes)");
    if (owner_it == owners.end()) {
      add_problem(result, node + ": no NodeSync");
    } else if (holders.size() == 1 && holders[0] != owner) {
      add_problem(result, node + ": held by " + holders[0] + " but NodeSync owner is '" + owner + "'");
    }
    if (const auto s = sim_nodes.find(node); s != sim_nodes.end()) {
      const json& n = *s->second;
      const std::string replica = n.value("replica", "");
      if (replica != owner) {
        add_problem(result, node + ": connected to replica '" + replica +
                                "' (X-Edgehub-Replica) but NodeSync owner is '" + owner + "'");
      }
      if (n.value("deliveriesThisConnection", 0) > 0 &&
          n.value("lastDeliveryReplica", "") != owner) {
        add_problem(result, node + ": last delivery came from '" +
                                n.value("lastDeliveryReplica", "") + "', owner is '" + owner + "'");
      }
    } else {
      add_problem(result, node + ": not in the simulator's state");
    }
    if (result.problem_count != before) ++result.nodes_diverged;
  }
  // The delivery audit's repairs: each is a change that reached its node only because the
  // safety net noticed it missing. Every scenario must do without.
  for (const auto& r : cluster.replicas()) {
    const auto repairs = cluster.metric(r.id, "edgehub_delivery_repairs_total");
    if (repairs && *repairs != 0) {
      add_problem(result, r.id + ": edgehub_delivery_repairs_total is " +
                              std::to_string(static_cast<long>(*repairs)) +
                              " (pods found undelivered and sent again; see its log)");
    }
  }
  return result;
}

Converged await_convergence(Cluster& cluster, std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  Converged c;
  const auto nodes = cluster.node_names();
  c.ok = eventually(
      [&] {
        try {
          c.last = check_convergence(cluster.api(), cluster.fleet_state(), nodes);
        } catch (const std::exception& e) {
          c.last = {};
          add_problem(c.last, e.what());
        }
        return c.last.ok();
      },
      limit, std::chrono::milliseconds(500));
  c.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  return c;
}

Converged await_ownership(Cluster& cluster, std::chrono::milliseconds limit) {
  const auto start = std::chrono::steady_clock::now();
  Converged c;
  c.ok = eventually(
      [&] {
        c.last = check_ownership(cluster);
        return c.last.ok();
      },
      limit, std::chrono::milliseconds(500));
  c.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  return c;
}

}  // namespace edgehub::e2e

#include "table.hpp"

#include <edgehub/devapi/api_error.hpp>

#include <ctime>
#include <functional>
#include <set>
#include <vector>

namespace edgehub::devapi::detail {

using nlohmann::json;
using Clock = std::chrono::system_clock;

namespace {

// Column descriptions as kube-apiserver sends them (from the API's field documentation).
constexpr const char* kNameDoc =
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
constexpr const char* kAgeDoc =
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
    "api-conventions.md#metadata";

struct Column {
  std::string name;
  std::string type = "string";
  std::string format;
  std::string description;
  int priority = 0;  // 1: shown by `-o wide` only
};

using Cells = std::function<json(const json& object, Clock::time_point now)>;

struct Printer {
  std::vector<Column> columns;
  Cells cells;
};

std::string str(const json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& child(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}

std::optional<Clock::time_point> parse_time(const std::string& text) {
  std::tm tm{};
  const char* end = ::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  return Clock::from_time_t(::timegm(&tm));
}

// translateTimestampSince: "<unknown>" for a missing timestamp.
std::string age(const std::string& timestamp, Clock::time_point now) {
  auto t = parse_time(timestamp);
  if (!t) return "<unknown>";
  return human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
}

std::string age_of(const json& object, Clock::time_point now) {
  return age(str(child(object, "metadata"), "creationTimestamp"), now);
}

std::string name_of(const json& object) { return str(child(object, "metadata"), "name"); }

std::string or_none(std::string s) { return s.empty() ? "<none>" : s; }

// --- nodes (printNode) ---

std::string node_status(const json& node) {
  std::vector<std::string> status;
  for (const auto& c : child(child(node, "status"), "conditions")) {
    if (str(c, "type") != "Ready") continue;
    status.push_back(str(c, "status") == "True" ? "Ready" : "NotReady");
    break;
  }
  if (status.empty()) status.push_back("Unknown");
  const json& unschedulable = child(child(node, "spec"), "unschedulable");
  if (unschedulable.is_boolean() && unschedulable.get<bool>()) {
    status.push_back("SchedulingDisabled");
  }
  std::string out;
  for (const auto& s : status) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::string node_roles(const json& node) {
  constexpr std::string_view kPrefix = "node-role.kubernetes.io/";
  std::set<std::string> roles;  // sorted, as Go's sets.List()
  const json& labels = child(child(node, "metadata"), "labels");
  if (labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      if (key.starts_with(kPrefix) && key.size() > kPrefix.size()) {
        roles.insert(key.substr(kPrefix.size()));
      } else if (key == "kubernetes.io/role" && value.is_string() && !value.get<std::string>().empty()) {
        roles.insert(value.get<std::string>());
      }
    }
  }
  std::string out;
  for (const auto& r : roles) out += (out.empty() ? "" : ",") + r;
  return or_none(out);
}

std::string node_address(const json& node, std::string_view type) {
  for (const auto& a : child(child(node, "status"), "addresses")) {
    if (str(a, "type") == type) return str(a, "address");
  }
  return "<none>";
}

std::string unknown_if_empty(std::string s) { return s.empty() ? "<unknown>" : s; }

Printer node_printer() {
  const auto info = [](const json& n, const char* key) {
    return unknown_if_empty(str(child(child(n, "status"), "nodeInfo"), key));
  };
  return {{{"Name", "string", "name", kNameDoc},
           {"Status", "string", "", "The status of the node"},
           {"Roles", "string", "", "The roles of the node"},
           {"Age", "string", "", kAgeDoc},
           {"Version", "string", "", "Kubelet Version reported by the node."},
           {"Internal-IP", "string", "", "List of internal IPs assigned to the node.", 1},
           {"External-IP", "string", "", "List of external IPs assigned to the node.", 1},
           {"OS-Image", "string", "",
            "OS image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            1},
           {"Kernel-Version", "string", "",
            "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1},
           {"Container-Runtime", "string", "",
            "Container runtime version reported by the node through runtime remote API (e.g. "
            "containerd://1.4.2).",
            1}},
          [info](const json& n, Clock::time_point now) {
            return json::array({name_of(n), node_status(n), node_roles(n), age_of(n, now),
                                str(child(child(n, "status"), "nodeInfo"), "kubeletVersion"),
                                node_address(n, "InternalIP"), node_address(n, "ExternalIP"),
                                info(n, "osImage"), info(n, "kernelVersion"),
                                info(n, "containerRuntimeVersion")});
          }};
}

// --- pods (printPod) ---

std::int64_t int_of(const json& j, const char* key) {
  const json& v = child(j, key);
  return v.is_number_integer() ? v.get<std::int64_t>() : 0;
}

bool condition_true(const json& status, std::string_view type) {
  for (const auto& c : child(status, "conditions")) {
    if (str(c, "type") == type) return str(c, "status") == "True";
  }
  return false;
}

json pod_cells(const json& pod, Clock::time_point now) {
  const json& spec = child(pod, "spec");
  const json& status = child(pod, "status");
  const json& containers = child(spec, "containers");
  const std::size_t total = containers.is_array() ? containers.size() : 0;
  std::size_t ready = 0;
  std::int64_t restarts = 0;
  std::string last_restart;  // the latest finishedAt of a container's last termination
  std::string reason = str(status, "phase");
  if (!str(status, "reason").empty()) reason = str(status, "reason");
  for (const auto& c : child(status, "conditions")) {
    if (str(c, "type") == "PodScheduled" && str(c, "reason") == "SchedulingGated") {
      reason = "SchedulingGated";
    }
  }
  const auto note_restart = [&](const json& cs) {
    const std::string finished =
        str(child(child(cs, "lastState"), "terminated"), "finishedAt");
    if (finished > last_restart) last_restart = finished;
  };

  bool initializing = false;
  const json& init_statuses = child(status, "initContainerStatuses");
  const std::size_t init_total =
      child(spec, "initContainers").is_array() ? child(spec, "initContainers").size() : 0;
  std::size_t i = 0;
  for (const auto& cs : init_statuses) {
    restarts += int_of(cs, "restartCount");
    note_restart(cs);
    const json& state = child(cs, "state");
    const json& terminated = child(state, "terminated");
    const json& waiting = child(state, "waiting");
    if (terminated.is_object() && int_of(terminated, "exitCode") == 0) {
      ++i;
      continue;
    }
    if (terminated.is_object()) {
      const std::string r = str(terminated, "reason");
      if (!r.empty()) {
        reason = "Init:" + r;
      } else if (int_of(terminated, "signal") != 0) {
        reason = "Init:Signal:" + std::to_string(int_of(terminated, "signal"));
      } else {
        reason = "Init:ExitCode:" + std::to_string(int_of(terminated, "exitCode"));
      }
    } else if (waiting.is_object() && !str(waiting, "reason").empty() &&
               str(waiting, "reason") != "PodInitializing") {
      reason = "Init:" + str(waiting, "reason");
    } else {
      reason = "Init:" + std::to_string(i) + "/" + std::to_string(init_total);
    }
    initializing = true;
    break;
  }
  if (!initializing || condition_true(status, "Initialized")) {
    restarts = 0;
    bool running = false;
    const json& statuses = child(status, "containerStatuses");
    for (std::size_t k = statuses.is_array() ? statuses.size() : 0; k-- > 0;) {
      const json& cs = statuses[k];
      restarts += int_of(cs, "restartCount");
      note_restart(cs);
      const json& state = child(cs, "state");
      const json& waiting = child(state, "waiting");
      const json& terminated = child(state, "terminated");
      const json& is_ready = child(cs, "ready");
      if (waiting.is_object() && !str(waiting, "reason").empty()) {
        reason = str(waiting, "reason");
      } else if (terminated.is_object() && !str(terminated, "reason").empty()) {
        reason = str(terminated, "reason");
      } else if (terminated.is_object()) {
        reason = int_of(terminated, "signal") != 0
                     ? "Signal:" + std::to_string(int_of(terminated, "signal"))
                     : "ExitCode:" + std::to_string(int_of(terminated, "exitCode"));
      } else if (is_ready.is_boolean() && is_ready.get<bool>() && child(state, "running").is_object()) {
        running = true;
        ++ready;
      }
    }
    if (reason == "Completed" && running) {
      reason = condition_true(status, "Ready") ? "Running" : "NotReady";
    }
  }
  const bool deleting = !str(child(pod, "metadata"), "deletionTimestamp").empty();
  const std::string phase = str(status, "phase");
  if (deleting && str(status, "reason") == "NodeLost") {
    reason = "Unknown";
  } else if (deleting && phase != "Failed" && phase != "Succeeded") {
    reason = "Terminating";
  }
  std::string restarts_cell = std::to_string(restarts);
  if (restarts != 0 && !last_restart.empty()) {
    restarts_cell += " (" + age(last_restart, now) + " ago)";
  }
  std::string gates = "<none>";
  const json& readiness_gates = child(spec, "readinessGates");
  if (readiness_gates.is_array() && !readiness_gates.empty()) {
    std::size_t met = 0;
    for (const auto& g : readiness_gates) {
      if (condition_true(status, str(g, "conditionType"))) ++met;
    }
    gates = std::to_string(met) + "/" + std::to_string(readiness_gates.size());
  }
  return json::array({name_of(pod), std::to_string(ready) + "/" + std::to_string(total), reason,
                      restarts_cell, age_of(pod, now), or_none(str(status, "podIP")),
                      or_none(str(spec, "nodeName")), or_none(str(status, "nominatedNodeName")),
                      gates});
}

Printer pod_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic."},
           {"Status", "string", "", "The aggregate status of the containers in this pod."},
           {"Restarts", "string", "",
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted."},
           {"Age", "string", "", kAgeDoc},
           {"IP", "string", "",
            "podIP address allocated to the pod. Routable at least within the cluster. Empty if "
            "not yet allocated.",
            1},
           {"Node", "string", "",
            "NodeName indicates in which node this pod is scheduled. If empty, this pod is a "
            "candidate for scheduling by the scheduler defined in schedulerName. Once this field "
            "is set, the kubelet for this node becomes responsible for the lifecycle of this pod. "
            "This field should not be used to express a desire for the pod to be scheduled on a "
            "specific node. "
            "https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename",
            1},
           {"Nominated Node", "string", "",
            "nominatedNodeName is set only when this pod preempts other pods on the node, but it "
            "cannot be scheduled right away as preemption victims receive their graceful "
            "termination periods. This field does not guarantee that the pod will be scheduled "
            "on this node. Scheduler may decide to place the pod elsewhere if other nodes become "
            "available sooner. Scheduler may also decide to give the resources on this node to a "
            "higher priority pod that is created after preemption. As a result, this field may "
            "be different than PodSpec.nodeName when the pod is scheduled.",
            1},
           {"Readiness Gates", "string", "",
            "If specified, all readiness gates will be evaluated for pod readiness. A pod is "
            "ready when all its containers are ready AND all conditions specified in the "
            "readiness gates have status equal to \"True\" More info: "
            "https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates",
            1}},
          pod_cells};
}

// --- the rest ---

std::int64_t count_of(const json& j) { return j.is_object() || j.is_array() ? static_cast<std::int64_t>(j.size()) : 0; }

Printer lease_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Holder", "string", "",
            "holderIdentity contains the identity of the holder of a current lease. If "
            "Coordinated Leader Election is used, the holder identity must be equal to the "
            "elected LeaseCandidate.metadata.name field."},
           {"Age", "string", "", kAgeDoc}},
          [](const json& l, Clock::time_point now) {
            return json::array({name_of(l), str(child(l, "spec"), "holderIdentity"), age_of(l, now)});
          }};
}

Printer configmap_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Data", "string", "",
            "Data contains the configuration data. Each key must consist of alphanumeric "
            "characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the "
            "BinaryData field. The keys stored in Data must not overlap with the keys in the "
            "BinaryData field, this is enforced during validation process."},
           {"Age", "string", "", kAgeDoc}},
          [](const json& c, Clock::time_point now) {
            return json::array({name_of(c), count_of(child(c, "data")) + count_of(child(c, "binaryData")),
                                age_of(c, now)});
          }};
}

Printer secret_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Type", "string", "", "Used to facilitate programmatic handling of secret data."},
           {"Data", "string", "",
            "Data contains the secret data. Each key must consist of alphanumeric characters, "
            "'-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, "
            "representing the arbitrary (possibly non-string) data value here. Described in "
            "https://tools.ietf.org/html/rfc4648#section-4"},
           {"Age", "string", "", kAgeDoc}},
          [](const json& s, Clock::time_point now) {
            return json::array({name_of(s), str(s, "type"),
                                count_of(child(s, "data")),
                                age_of(s, now)});
          }};
}

Printer namespace_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Status", "string", "", "The status of the namespace"},
           {"Age", "string", "", kAgeDoc}},
          [](const json& n, Clock::time_point now) {
            return json::array({name_of(n), str(child(n, "status"), "phase"), age_of(n, now)});
          }};
}

// The CRD's additionalPrinterColumns (deploy/): NAME OWNER AGE.
Printer nodesync_printer() {
  return {{{"Name", "string", "name", kNameDoc},
           {"Owner", "string", "", "The edgehub replica that holds the node's connection."},
           {"Age", "date", "", kAgeDoc}},
          [](const json& n, Clock::time_point now) {
            return json::array({name_of(n), str(child(n, "status"), "owner"), age_of(n, now)});
          }};
}

// What kube-apiserver answers for custom resources without printer columns: NAME AGE.
Printer default_printer() {
  return {{{"Name", "string", "name", kNameDoc}, {"Age", "date", "", kAgeDoc}},
          [](const json& o, Clock::time_point now) {
            return json::array({name_of(o), age_of(o, now)});
          }};
}

Printer printer_for(const ResourceInfo& r) {
  if (r.group.empty() && r.resource == "nodes") return node_printer();
  if (r.group.empty() && r.resource == "pods") return pod_printer();
  if (r.group.empty() && r.resource == "configmaps") return configmap_printer();
  if (r.group.empty() && r.resource == "secrets") return secret_printer();
  if (r.group.empty() && r.resource == "namespaces") return namespace_printer();
  if (r.group == "coordination.k8s.io" && r.resource == "leases") return lease_printer();
  if (r.group == "edgehub.io" && r.resource == "nodesyncs") return nodesync_printer();
  return default_printer();
}

json row_object(const ResourceInfo& resource, const json& object, IncludeObject include) {
  switch (include) {
    case IncludeObject::None: return nullptr;
    case IncludeObject::Object: {
      json full = object;
      if (!full.contains("kind")) full["kind"] = resource.kind;
      if (!full.contains("apiVersion")) full["apiVersion"] = resource.api_version();
      return full;
    }
    case IncludeObject::Metadata: break;
  }
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", child(object, "metadata")}};
}

}  // namespace

std::optional<std::string> table_version_wanted(std::string_view accept) {
  while (!accept.empty()) {
    const auto comma = accept.find(',');
    std::string_view entry = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    // "application/json;as=Table;v=v1;g=meta.k8s.io": the media type, then parameters.
    std::string as, version, group;
    bool first = true;
    bool json_type = false;
    while (true) {
      const auto semi = entry.find(';');
      std::string_view part = entry.substr(0, semi);
      while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
      while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
      if (first) {
        json_type = part == "application/json" || part == "*/*" || part == "application/*";
        first = false;
      } else if (const auto eq = part.find('='); eq != std::string_view::npos) {
        const auto key = part.substr(0, eq);
        const std::string value(part.substr(eq + 1));
        if (key == "as") as = value;
        if (key == "v") version = value;
        if (key == "g") group = value;
      }
      if (semi == std::string_view::npos) break;
      entry.remove_prefix(semi + 1);
    }
    if (!json_type) continue;  // protobuf, yaml...: look at the next choice
    if (as.empty()) return std::nullopt;  // a plain object is preferred
    if (as == "Table" && group == "meta.k8s.io" && (version == "v1" || version == "v1beta1")) {
      return version;
    }
  }
  return std::nullopt;
}

IncludeObject parse_include_object(std::string_view value) {
  if (value.empty() || value == "Metadata") return IncludeObject::Metadata;
  if (value == "None") return IncludeObject::None;
  if (value == "Object") return IncludeObject::Object;
  throw ApiError::bad_request("includeObject: Unsupported value: \"" + std::string(value) +
                              "\": supported values: \"Metadata\", \"None\", \"Object\"");
}

json to_table(const ResourceInfo& resource, const json& body, bool is_list,
              const std::string& version, IncludeObject include, Clock::time_point now) {
  const Printer printer = printer_for(resource);
  json columns = json::array();
  for (const auto& c : printer.columns) {
    columns.push_back({{"name", c.name},
                       {"type", c.type},
                       {"format", c.format},
                       {"description", c.description},
                       {"priority", c.priority}});
  }
  json rows = json::array();
  const auto add = [&](const json& object) {
    rows.push_back({{"cells", printer.cells(object, now)},
                    {"object", row_object(resource, object, include)}});
  };
  json metadata = json::object();
  if (is_list) {
    for (const auto& item : child(body, "items")) add(item);
    const json& list_meta = child(body, "metadata");
    for (const char* key : {"resourceVersion", "continue", "remainingItemCount"}) {
      if (list_meta.is_object() && list_meta.contains(key)) metadata[key] = list_meta[key];
    }
  } else {
    add(body);
    const std::string rv = str(child(body, "metadata"), "resourceVersion");
    if (!rv.empty()) metadata["resourceVersion"] = rv;
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/" + version},
          {"metadata", std::move(metadata)},
          {"columnDefinitions", std::move(columns)},
          {"rows", std::move(rows)}};
}

std::string human_duration(std::chrono::seconds d) {
  const long long seconds = d.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return std::to_string(seconds) + "s";
  const long long minutes = seconds / 60;
  if (minutes < 10) {
    const long long s = seconds % 60;
    return s == 0 ? std::to_string(minutes) + "m"
                  : std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 60 * 3) return std::to_string(minutes) + "m";
  const long long hours = minutes / 60;
  if (hours < 8) {
    const long long m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h" : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    const long long h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d"
                  : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    const long long days = (hours / 24) % 365;
    return days == 0 ? std::to_string(hours / 24 / 365) + "y"
                     : std::to_string(hours / 24 / 365) + "y" + std::to_string(days) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

}  // namespace edgehub::devapi::detail

#include "workload.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "cluster.hpp"

namespace edgehub::e2e {

namespace {

const std::string kNs = Cluster::kNamespace;
const std::string kPods = "/api/v1/namespaces/" + kNs + "/pods";
const std::string kConfigMaps = "/api/v1/namespaces/" + kNs + "/configmaps";
const std::string kSecrets = "/api/v1/namespaces/" + kNs + "/secrets";
const std::string kDevices = "/apis/devices.kubeedge.io/v1beta1/namespaces/" + kNs + "/devices";
const std::string kModels = "/apis/devices.kubeedge.io/v1beta1/namespaces/" + kNs + "/devicemodels";

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += k[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

json configmap(const std::string& name, const std::string& value) {
  return {{"metadata", {{"name", name}}}, {"data", {{"value", value}}}};
}

json secret(const std::string& name, const std::string& value) {
  return {{"metadata", {{"name", name}}}, {"type", "Opaque"}, {"data", {{"value", base64(value)}}}};
}

json device(const std::string& name, const std::string& node, const std::string& value) {
  return {{"apiVersion", "devices.kubeedge.io/v1beta1"},
          {"kind", "Device"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"deviceModelRef", {{"name", "e2e-model"}}},
            {"nodeName", node},
            {"properties",
             json::array({{{"name", "temperature"},
                           {"desired", {{"value", value}, {"metadata", {{"type", "int"}}}}}}})}}}};
}

}  // namespace

Workload::Workload(const std::string& kubeconfig, std::vector<std::string> nodes)
    : api_(kubeconfig), nodes_(std::move(nodes)), cm2_present_(nodes_.size(), true) {}

Workload::~Workload() { stop_churn(); }

void Workload::check(const ApiReply& reply, const char* what) {
  ++ops_;
  if (!reply.ok()) {
    ++failed_;
    // Expected now and then (the API server restarting, a pod deleted twice); logged for the
    // reader of a failed run.
    std::cerr << "e2e churn: " << what << ": " << reply.status << " " << reply.body.dump().substr(0, 200)
              << "\n";
  }
}

bool Workload::create_pod(const std::string& name, const std::string& node, bool anchor) {
  json volumes = json::array({
      {{"name", "config"}, {"configMap", {{"name", "cm-" + node}}}},
      {{"name", "secret"}, {"secret", {{"secretName", "sec-" + node}}}},
  });
  json container = {{"name", "app"}, {"image", "registry.local/app:1"}};
  if (anchor) {
    volumes.push_back({{"name", "shared"}, {"configMap", {{"name", "cm-shared"}}}});
    container["envFrom"] =
        json::array({{{"configMapRef", {{"name", "cm2-" + node}, {"optional", true}}}}});
  }
  const json pod = {
      {"metadata", {{"name", name}, {"labels", {{"app", anchor ? "anchor" : "churn"}}}}},
      {"spec",
       {{"nodeName", node}, {"containers", json::array({container})}, {"volumes", volumes}}}};
  const auto reply = api_.call("POST", kPods, pod);
  check(reply, "create pod");
  return reply.ok();
}

void Workload::seed() {
  check(api_.call("POST", kConfigMaps, configmap("cm-shared", "0")), "create cm-shared");
  // One device per node, all of one model: membership, model and device messages in every
  // scenario, and device moves in the churn.
  check(api_.call("POST", kModels,
                  {{"apiVersion", "devices.kubeedge.io/v1beta1"},
                   {"kind", "DeviceModel"},
                   {"metadata", {{"name", "e2e-model"}}},
                   {"spec", {{"protocol", "modbus"},
                             {"properties", json::array({{{"name", "temperature"}, {"type", "INT"}}})}}}}),
        "create device model");
  for (const auto& node : nodes_) {
    check(api_.call("POST", kDevices, device("dev-" + node, node, "0")), "create device");
  }
  for (const auto& node : nodes_) {
    check(api_.call("POST", kConfigMaps, configmap("cm-" + node, "0")), "create configmap");
    check(api_.call("POST", kConfigMaps, configmap("cm2-" + node, "0")), "create configmap");
    check(api_.call("POST", kSecrets, secret("sec-" + node, "0")), "create secret");
    create_pod("anchor-" + node, node, true);
  }
}

const std::string& Workload::random_node() {
  return nodes_[std::uniform_int_distribution<std::size_t>(0, nodes_.size() - 1)(rng_)];
}

void Workload::one_operation() {
  const int dice = std::uniform_int_distribution<int>(0, 99)(rng_);
  const std::string value = std::to_string(++seq_);
  if (dice < 25) {
    const auto& node = random_node();
    const std::string name = "p-" + value;
    if (create_pod(name, node, false)) {
      std::lock_guard lock(mutex_);
      churn_pods_.push_back({name, node});
    }
    return;
  }
  if (dice < 50) {
    ChurnPod pod;
    {
      std::lock_guard lock(mutex_);
      if (churn_pods_.empty()) return;
      const auto i = std::uniform_int_distribution<std::size_t>(0, churn_pods_.size() - 1)(rng_);
      pod = churn_pods_[i];
      if (dice >= 35) {
        // Delete: graceful first now and then (the edge sees deletionTimestamp), then forced.
        const bool graceful = dice < 40 && !pod.terminating;
        if (graceful) {
          churn_pods_[i].terminating = true;
        } else {
          churn_pods_.erase(churn_pods_.begin() + static_cast<std::ptrdiff_t>(i));
        }
        const json options = {{"kind", "DeleteOptions"},
                              {"apiVersion", "v1"},
                              {"gracePeriodSeconds", graceful ? 30 : 0}};
        check(api_.call("DELETE", kPods + "/" + pod.name, options), "delete pod");
        return;
      }
    }
    const json patch = {{"metadata", {{"labels", {{"rev", value}}}}}};
    check(api_.merge_patch(kPods + "/" + pod.name, patch), "update pod");
    return;
  }
  const auto& node = random_node();
  if (dice < 68) {
    check(api_.merge_patch(kConfigMaps + "/cm-" + node, {{"data", {{"value", value}}}}),
          "update configmap");
  } else if (dice < 84) {
    check(api_.merge_patch(kSecrets + "/sec-" + node, {{"data", {{"value", base64(value)}}}}),
          "update secret");
  } else if (dice < 92) {
    const auto index = static_cast<std::size_t>(&node - nodes_.data());
    if (cm2_present_[index]) {
      check(api_.call("DELETE", kConfigMaps + "/cm2-" + node), "delete configmap");
    } else {
      check(api_.call("POST", kConfigMaps, configmap("cm2-" + node, value)), "create configmap");
    }
    cm2_present_[index] = !cm2_present_[index];
  } else if (dice < 94) {
    check(api_.merge_patch(kConfigMaps + "/cm-shared", {{"data", {{"value", value}}}}),
          "update cm-shared");
  } else if (dice < 97) {
    touch_anchor(node);
  } else if (dice < 99) {
    // A device changes node (leaves one edge, joins another).
    check(api_.merge_patch(kDevices + "/dev-" + node, {{"spec", {{"nodeName", random_node()}}}}),
          "move device");
  } else {
    check(api_.merge_patch(kDevices + "/dev-" + node,
                           {{"spec", {{"properties", json::array({{{"name", "temperature"},
                                                                   {"desired", {{"value", value}}}}})}}}}),
          "update device desired value");
  }
}

bool Workload::touch_anchor(const std::string& node) {
  const json patch = {{"metadata", {{"annotations", {{"e2e/touched", std::to_string(++seq_)}}}}}};
  const auto reply = api_.merge_patch(kPods + "/anchor-" + node, patch);
  check(reply, "update anchor pod");
  return reply.ok();
}

void Workload::start_churn(double ops_per_second) {
  stop_ = false;
  thread_ = std::thread([this, ops_per_second] { churn_loop(ops_per_second); });
}

void Workload::stop_churn() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Workload::churn_loop(double ops_per_second) {
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / ops_per_second));
  auto next = std::chrono::steady_clock::now();
  while (!stop_) {
    one_operation();
    next += period;
    // Paced, not bursty: behind schedule (API server restarting) the driver catches up at
    // most one period at a time.
    const auto now = std::chrono::steady_clock::now();
    if (next < now - period) next = now;
    std::this_thread::sleep_until(next);
  }
}

std::size_t Workload::force_delete_pods_of(const std::vector<std::string>& nodes) {
  std::vector<ChurnPod> doomed;
  {
    std::lock_guard lock(mutex_);
    std::erase_if(churn_pods_, [&](const ChurnPod& p) {
      if (std::find(nodes.begin(), nodes.end(), p.node) == nodes.end()) return false;
      doomed.push_back(p);
      return true;
    });
  }
  const json options = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"gracePeriodSeconds", 0}};
  std::size_t deleted = 0;
  for (const auto& p : doomed) {
    const auto reply = api_.call("DELETE", kPods + "/" + p.name, options);
    check(reply, "force-delete pod");
    if (reply.ok()) ++deleted;
  }
  return deleted;
}

}  // namespace edgehub::e2e

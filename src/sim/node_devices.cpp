// The device-twin side of a simulated edge (edgecore's devicetwin, KUBEEDGE-WIRE §3.3, §3.5):
// membership from the hub, the membership/detail answer, and periodic twin reports for the
// member devices, each waiting for the hub's confirm.
#include <algorithm>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <edgehub/wire/resource.hpp>

#include "node.hpp"
#include "worker.hpp"

namespace edgehub::sim {
namespace {

using Clock = std::chrono::steady_clock;

std::string id_of(const nlohmann::json& item) {
  if (!item.is_object()) return {};
  const auto it = item.find("id");
  return it != item.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Device-twin payloads are embedded objects or JSON strings holding one.
nlohmann::json payload(const wire::Message& m) {
  if (auto text = m.content_string()) {
    return wire::parse_json_bounded(*text, wire::kMaxEdgeJsonDepth);
  }
  return m.content_json();
}

}  // namespace

Node::SimDevice& Node::sim_device(const std::string& id) {
  for (auto& d : devices_) {
    if (d.id == id) return d;
  }
  devices_.push_back(SimDevice{id, false, {}});
  return devices_.back();
}

void Node::handle_membership(const wire::Message& message) {
  const auto content = payload(message);
  if (!content.is_object()) return;
  if (const auto added = content.find("added_devices"); added != content.end() && added->is_array()) {
    for (const auto& item : *added) {
      if (auto id = id_of(item); !id.empty()) sim_device(id).member = true;
    }
  }
  if (const auto removed = content.find("removed_devices");
      removed != content.end() && removed->is_array()) {
    for (const auto& item : *removed) {
      if (auto id = id_of(item); !id.empty()) sim_device(id).member = false;
    }
  }
  std::erase_if(devices_, [](const SimDevice& d) { return !d.member && d.properties.empty(); });
}

void Node::device_object(const wire::Resource& resource, const nlohmann::json& content,
                         bool deleted) {
  auto& device = sim_device(resource.ns + "/" + resource.name);
  device.properties.clear();
  if (!deleted && content.is_object()) {
    const auto spec = content.value("spec", nlohmann::json::object());
    for (const auto& p : spec.value("properties", nlohmann::json::array())) {
      if (!p.is_object() || !p.contains("name") || !p["name"].is_string()) continue;
      std::string desired;
      if (p.contains("desired") && p["desired"].is_object()) {
        const auto& v = p["desired"];
        if (v.contains("value") && v["value"].is_string()) desired = v["value"].get<std::string>();
      }
      device.properties.emplace_back(p["name"].get<std::string>(), desired);
    }
  }
  std::erase_if(devices_, [](const SimDevice& d) { return !d.member && d.properties.empty(); });
}

bool Node::handle_twin_response(const wire::Message& message) {
  const auto& parent = message.header.parent_msg_id;
  if (!detail_msg_id_.empty() && parent == detail_msg_id_) {
    // dealMembershipDetail: the listed devices are the membership; others leave.
    const auto content = payload(message);
    if (content.is_object() && content.contains("devices") && content["devices"].is_array()) {
      for (auto& d : devices_) d.member = false;
      for (const auto& item : content["devices"]) {
        if (auto id = id_of(item); !id.empty()) sim_device(id).member = true;
      }
      std::erase_if(devices_, [](const SimDevice& d) { return !d.member && d.properties.empty(); });
    }
    detail_msg_id_.clear();
    return true;
  }
  const auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
    return p.msg_id == parent && p.kind == Request::twin_report;
  });
  if (it == pending_.end()) return false;
  auto& stats = worker_.stats;
  stats.twin_rtt.record(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - it->sent).count());
  pending_.erase(it);
  if (message.content_string().value_or("") == wire::kContentOK) {
    stats.twin_confirms.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats.twin_refused.fetch_add(1, std::memory_order_relaxed);
  }
  return true;  // devicetwin does not ACK confirms
}

void Node::twin_tick(std::uint32_t epoch) {
  if (!is_current(epoch) || !connected_) return;
  for (const auto& d : devices_) {
    if (d.member && !d.properties.empty()) send_twin_report(d);
  }
  worker_.scheduler.after(worker_.options.twin_every, [this, epoch] { twin_tick(epoch); });
}

void Node::send_twin_report(const SimDevice& device) {
  const auto slash = device.id.find('/');
  if (slash == std::string::npos) return;
  auto m = make("twin", wire::group::kResource, wire::operation::kUpdate,
                "device/" + device.id + "/twin/edge_updated");
  nlohmann::ordered_json twins = nlohmann::ordered_json::object();
  for (const auto& [name, desired] : device.properties) {
    const nlohmann::ordered_json at = {{"timestamp", m.header.timestamp}};
    twins[name] = {{"expected", {{"value", desired}, {"metadata", at}}},
                   {"actual", {{"value", desired.empty() ? "0" : desired}, {"metadata", at}}},
                   {"metadata", {{"type", "string"}}}};
  }
  const nlohmann::ordered_json content = {{"event_id", wire::new_message_id()},
                                          {"timestamp", m.header.timestamp},
                                          {"twin", std::move(twins)}};
  m.set_content(content);
  worker_.stats.twin_reports.fetch_add(1, std::memory_order_relaxed);
  send_request(std::move(m), Request::twin_report);
}

}  // namespace edgehub::sim

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/downstream.hpp>
#include <edgehub/wire/builders.hpp>
#include <spdlog/spdlog.h>

#include <functional>

namespace edgehub::hub {

namespace asio = boost::asio;

namespace {

constexpr std::string_view kDevicesApiVersion = "devices.kubeedge.io/v1beta1";

std::string key_of(std::string_view ns, std::string_view name) {
  std::string key;
  key.reserve(ns.size() + name.size() + 1);
  key.append(ns).append("/").append(name);
  return key;
}

const nlohmann::json& member(const nlohmann::json& j, const char* name) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(name);
  return it == j.end() ? kNull : *it;
}

// What the edge must be told again when it changes: the spec, labels and annotations.
// Status writes (the edge's own reports) do not change it.
std::size_t digest_of(const nlohmann::json& object) {
  const auto& meta = member(object, "metadata");
  std::string text = member(object, "spec").dump();
  text += member(meta, "labels").dump();
  text += member(meta, "annotations").dump();
  return std::hash<std::string>{}(text);
}

}  // namespace

class DeviceRouter::DeviceEvents final : public kube::ReflectorHandler {
 public:
  explicit DeviceEvents(DeviceRouter& router) : router_(router) {}
  void on_added(const kube::Object& obj) override { router_.upsert_device(obj); }
  void on_modified(const kube::Object& obj) override { router_.upsert_device(obj); }
  void on_deleted(const kube::Object& obj) override { router_.remove_device(obj); }
  void on_resynced(const std::vector<kube::Object>& current) override {
    router_.resynced_devices(current);
  }

 private:
  DeviceRouter& router_;
};

class DeviceRouter::ModelEvents final : public kube::ReflectorHandler {
 public:
  explicit ModelEvents(DeviceRouter& router) : router_(router) {}
  void on_added(const kube::Object& obj) override { router_.upsert_model(obj); }
  void on_modified(const kube::Object& obj) override { router_.upsert_model(obj); }
  void on_deleted(const kube::Object& obj) override { router_.remove_model(obj); }
  void on_resynced(const std::vector<kube::Object>& current) override {
    router_.resynced_models(current);
  }

 private:
  DeviceRouter& router_;
};

DeviceRouter::DeviceRouter(std::shared_ptr<kube::Client> client, Registry& registry,
                           metrics::Registry& metrics, DeviceRouterOptions options)
    : client_(std::move(client)),
      registry_(registry),
      options_(options),
      device_events_(std::make_unique<DeviceEvents>(*this)),
      model_events_(std::make_unique<ModelEvents>(*this)),
      changes_(metrics.counter("edgehub_device_changes_total",
                               "Device messages queued for owned nodes, by kind (device, "
                               "devicemodel, membership) and operation.",
                               {"kind", "operation"})),
      resyncs_(metrics.counter("edgehub_device_resyncs_total",
                               "Node device resyncs (membership, models and devices re-sent).")
                   .with({})) {
  metrics.gauge_callback("edgehub_devices", "Device objects cached (cluster-wide).",
                         [this] { return static_cast<double>(device_count_.load()); });
  metrics.gauge_callback("edgehub_device_models", "DeviceModel objects cached (cluster-wide).",
                         [this] { return static_cast<double>(model_count_.load()); });
}

DeviceRouter::~DeviceRouter() = default;

// The cache sizes for the metrics, which are read from other threads.
struct DeviceRouter::Recount {
  DeviceRouter& router;
  ~Recount() {
    router.device_count_ = router.devices_.size();
    router.model_count_ = router.models_.size();
  }
};

void DeviceRouter::start() {
  if (!options_.enabled) {
    disabled_ = true;
    return;
  }
  // Named options: GCC 12 and aggregate temporaries in co_await (see upstream.cpp).
  asio::co_spawn(client_->executor(), [this]() -> asio::awaitable<void> {
    kube::ListOptions probe;
    probe.limit = 1;
    auto found = co_await client_->list(kube::resources::devices(), "", probe);
    if (stopped_) co_return;
    if (!found && found.error().is(kube::ErrorKind::NotFound)) {
      disabled_ = true;
      spdlog::warn("devices: the API server does not serve devices.kubeedge.io/v1beta1 (install "
                   "the CRDs from deploy/crds/kubeedge/); device routing is off until restart");
      co_return;
    }
    kube::ReflectorOptions d{.resource = kube::resources::devices(),
                             .initial_list_resource_version = "0"};
    kube::ReflectorOptions m{.resource = kube::resources::devicemodels(),
                             .initial_list_resource_version = "0"};
    device_reflector_ = kube::Reflector::make(client_, d, *device_events_);
    model_reflector_ = kube::Reflector::make(client_, m, *model_events_);
    model_reflector_->start();
    device_reflector_->start();
  }, asio::detached);
}

void DeviceRouter::stop() {
  stopped_ = true;
  if (device_reflector_) device_reflector_->stop();
  if (model_reflector_) model_reflector_->stop();
}

bool DeviceRouter::ready() const { return disabled_ || synced(); }

bool DeviceRouter::routes_to(const std::string& node) const {
  return !node.empty() && synced() && registry_.owns(node);
}

const DeviceEntry* DeviceRouter::device(const std::string& ns, const std::string& name) const {
  const auto it = devices_.find(key_of(ns, name));
  return it == devices_.end() ? nullptr : &it->second;
}

std::vector<const DeviceEntry*> DeviceRouter::devices_of(const std::string& node) const {
  std::vector<const DeviceEntry*> out;
  const auto it = by_node_.find(node);
  if (it == by_node_.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) out.push_back(&devices_.at(key));
  return out;
}

// --- devices ----------------------------------------------------------------------------------

void DeviceRouter::upsert_device(const kube::Object& object) {
  const Recount recount{*this};
  const auto json = object.json();
  if (json.is_discarded()) {
    spdlog::warn("devices: device {} is not valid JSON; ignored", object.key());
    return;
  }
  const auto& spec = member(json, "spec");
  DeviceEntry entry{.ns = object.meta.namespace_,
                    .name = object.meta.name,
                    .uid = object.meta.uid,
                    .resource_version = resource_version_number(object.meta.resource_version),
                    .node = object.node_name,
                    .model = member(member(spec, "deviceModelRef"), "name").is_string()
                                 ? member(member(spec, "deviceModelRef"), "name").get<std::string>()
                                 : std::string(),
                    .digest = digest_of(json),
                    .raw = std::make_shared<const std::string>(
                        with_type_meta(object, "Device", kDevicesApiVersion))};
  const std::string key = key_of(entry.ns, entry.name);
  auto it = devices_.find(key);
  if (it != devices_.end() && it->second.uid != entry.uid) {
    // Deleted and created again under the same name while we were not watching.
    unbind(it->second);
    devices_.erase(it);
    it = devices_.end();
  }
  if (it == devices_.end()) {
    auto& stored = devices_.emplace(key, std::move(entry)).first->second;
    if (!stored.node.empty()) bind(stored, wire::operation::kInsert);
    return;
  }
  DeviceEntry& old = it->second;
  if (old.node != entry.node || old.model != entry.model) {
    // Moved to another node (or to another model): leave, then join, so the model reference
    // counts and the edge's membership follow (KUBEEDGE-WIRE §3.5).
    if (!old.node.empty()) unbind(old);
    old = std::move(entry);
    if (!old.node.empty()) bind(old, wire::operation::kInsert);
    return;
  }
  const bool visible_change = old.digest != entry.digest;
  old = std::move(entry);
  if (visible_change && routes_to(old.node)) send_device(old.node, old, "update");
}

void DeviceRouter::remove_device(const kube::Object& object) {
  const Recount recount{*this};
  const auto it = devices_.find(key_of(object.meta.namespace_, object.meta.name));
  if (it == devices_.end()) return;
  if (!object.raw.empty()) {
    it->second.raw = std::make_shared<const std::string>(
        with_type_meta(object, "Device", kDevicesApiVersion));
    it->second.resource_version =
        std::max(it->second.resource_version, resource_version_number(object.meta.resource_version));
  }
  if (!it->second.node.empty()) unbind(it->second);
  devices_.erase(it);
}

void DeviceRouter::resynced_devices(const std::vector<kube::Object>& current) {
  // Vanished devices were reported through on_deleted already; this brings the rest up to date.
  for (const auto& object : current) upsert_device(object);
  if (!devices_synced_) {
    devices_synced_ = true;
    after_first_sync();
  }
}

// --- models -----------------------------------------------------------------------------------

void DeviceRouter::upsert_model(const kube::Object& object) {
  const Recount recount{*this};
  const auto json = object.json();
  if (json.is_discarded()) {
    spdlog::warn("devices: device model {} is not valid JSON; ignored", object.key());
    return;
  }
  ModelEntry entry{.ns = object.meta.namespace_,
                   .name = object.meta.name,
                   .uid = object.meta.uid,
                   .resource_version = resource_version_number(object.meta.resource_version),
                   .digest = digest_of(json),
                   .raw = std::make_shared<const std::string>(
                       with_type_meta(object, "DeviceModel", kDevicesApiVersion))};
  const std::string key = key_of(entry.ns, entry.name);
  auto it = models_.find(key);
  const bool known = it != models_.end();
  const bool changed = !known || it->second.digest != entry.digest || it->second.uid != entry.uid;
  auto& stored = known ? (it->second = std::move(entry)) : models_.emplace(key, std::move(entry)).first->second;
  if (!changed) return;
  const auto refs = model_refs_.find(key);
  if (refs == model_refs_.end()) return;
  // Nodes whose devices use it. A model that arrives after its devices (the two watches are
  // not ordered with each other) is inserted now, and the devices held back for it follow.
  for (const auto& [node, count] : refs->second) {
    if (count <= 0 || !routes_to(node)) continue;
    send_model(node, stored, known ? "update" : "insert");
    if (known) continue;
    for (const auto* d : devices_of(node)) {
      if (d->ns == stored.ns && d->model == stored.name) send_device(node, *d, "insert");
    }
  }
}

void DeviceRouter::remove_model(const kube::Object& object) {
  const Recount recount{*this};
  const std::string key = key_of(object.meta.namespace_, object.meta.name);
  const auto it = models_.find(key);
  if (it == models_.end()) return;
  // Nodes still holding devices of the model lose it too (cloudcore sends nothing when no
  // node uses it, KUBEEDGE-WIRE §10's device capture).
  if (const auto refs = model_refs_.find(key); refs != model_refs_.end()) {
    for (const auto& [node, count] : refs->second) {
      if (count > 0 && routes_to(node)) send_model(node, it->second, "delete");
    }
  }
  models_.erase(it);
}

void DeviceRouter::resynced_models(const std::vector<kube::Object>& current) {
  for (const auto& object : current) upsert_model(object);
  if (!models_synced_) {
    models_synced_ = true;
    after_first_sync();
  }
}

void DeviceRouter::after_first_sync() {
  if (!synced()) return;
  spdlog::info("devices: {} devices and {} device models cached", devices_.size(), models_.size());
  // Nodes that connected before the cache was complete get their resync now.
  for (const auto& session : registry_.sessions()) waiting_resyncs_.insert(session->node());
  auto waiting = std::move(waiting_resyncs_);
  waiting_resyncs_.clear();
  for (const auto& node : waiting) resync(node);
}

// --- binding ----------------------------------------------------------------------------------

void DeviceRouter::bind(const DeviceEntry& device, std::string_view operation) {
  const std::string key = key_of(device.ns, device.name);
  by_node_[device.node].insert(key);
  bool first_of_model = false;
  std::string model_key;
  if (!device.model.empty()) {
    model_key = key_of(device.ns, device.model);
    first_of_model = ++model_refs_[model_key][device.node] == 1;
  }
  if (!routes_to(device.node)) return;
  send_membership(device.node, {&device}, {});
  if (!model_key.empty()) {
    const auto m = models_.find(model_key);
    // Its model first; a device whose model is not known yet waits for it (upsert_model).
    if (m == models_.end()) return;
    if (first_of_model) send_model(device.node, m->second, "insert");
  }
  send_device(device.node, device, std::string(operation));
}

void DeviceRouter::unbind(const DeviceEntry& device) {
  const std::string key = key_of(device.ns, device.name);
  if (auto n = by_node_.find(device.node); n != by_node_.end()) {
    n->second.erase(key);
    if (n->second.empty()) by_node_.erase(n);
  }
  bool last_of_model = false;
  std::string model_key;
  if (!device.model.empty()) {
    model_key = key_of(device.ns, device.model);
    auto refs = model_refs_.find(model_key);
    if (refs != model_refs_.end()) {
      auto count = refs->second.find(device.node);
      if (count != refs->second.end() && --count->second <= 0) {
        last_of_model = true;
        refs->second.erase(count);
        if (refs->second.empty()) model_refs_.erase(refs);
      }
    }
  }
  if (!routes_to(device.node)) return;
  // The order of the capture: model, membership, device (KUBEEDGE-WIRE §10.4).
  if (last_of_model) {
    if (const auto m = models_.find(model_key); m != models_.end()) {
      send_model(device.node, m->second, "delete");
    }
  }
  send_membership(device.node, {}, {&device});
  send_device(device.node, device, "delete");
}

void DeviceRouter::resync(const std::string& node) {
  if (stopped_ || disabled_) return;
  if (!synced()) {
    waiting_resyncs_.insert(node);
    return;
  }
  if (!registry_.owns(node)) return;
  const auto devices = devices_of(node);
  std::set<std::string> models;
  for (const auto* d : devices) {
    if (!d->model.empty()) models.insert(key_of(d->ns, d->model));
  }
  // What the node's record says its edge holds and it should no longer have (unbound or
  // deleted while the node was away or its owner dead): model deletes, membership removal,
  // device deletes — the order of an unbinding.
  const NodeSyncRecord* record = node_sync_ != nullptr ? node_sync_->record(node) : nullptr;
  std::vector<SyncedObject> gone_models;
  std::vector<DeviceEntry> gone_devices;
  if (record != nullptr) {
    std::set<std::string> bound;
    for (const auto* d : devices) bound.insert(d->uid);
    std::set<std::string> model_uids;
    for (const auto& key : models) {
      if (const auto m = models_.find(key); m != models_.end()) model_uids.insert(m->second.uid);
    }
    for (const auto& [uid, o] : record->objects) {
      if (o.kind == ObjectKind::device && !bound.contains(uid)) {
        gone_devices.push_back(DeviceEntry{.ns = o.ns, .name = o.name, .uid = uid});
      } else if (o.kind == ObjectKind::devicemodel && !model_uids.contains(uid)) {
        gone_models.push_back(o);
      }
    }
  }
  if (devices.empty() && gone_devices.empty() && gone_models.empty()) return;
  resyncs_.inc();
  const auto minimal = [](const std::string& kind, const std::string& ns, const std::string& name,
                          const std::string& uid) {
    return std::make_shared<const std::string>(
        nlohmann::json{{"kind", kind},
                       {"apiVersion", "devices.kubeedge.io/v1beta1"},
                       {"metadata", {{"name", name}, {"namespace", ns}, {"uid", uid}}}}
            .dump());
  };
  for (const auto& m : gone_models) {
    send(node, Change{.kind = ObjectKind::devicemodel, .ns = m.ns, .name = m.name, .uid = m.uid,
                      .operation = std::string(wire::operation::kDelete),
                      .object = minimal("DeviceModel", m.ns, m.name, m.uid), .ordered = true});
  }
  if (!gone_devices.empty()) {
    std::vector<const DeviceEntry*> removed;
    for (const auto& d : gone_devices) removed.push_back(&d);
    send_membership(node, {}, removed);
    for (const auto& d : gone_devices) {
      send(node, Change{.kind = ObjectKind::device, .ns = d.ns, .name = d.name, .uid = d.uid,
                        .operation = std::string(wire::operation::kDelete),
                        .object = minimal("Device", d.ns, d.name, d.uid), .ordered = true});
    }
  }
  if (devices.empty()) return;
  // Objects a node may have missed arrive as `update`, as cloudcore's sync loop sends them
  // (KUBEEDGE-WIRE §10.5); membership first, so devicetwin knows every device. What the
  // record shows ACKed at its current version is not sent again.
  const auto acked = [&](const std::string& uid, std::uint64_t rv) {
    record = node_sync_ != nullptr ? node_sync_->record(node) : nullptr;
    if (record == nullptr) return false;
    const auto it = record->objects.find(uid);
    return it != record->objects.end() && it->second.acked_version >= rv;
  };
  send_membership(node, devices, {});
  for (const auto& key : models) {
    if (const auto m = models_.find(key); m != models_.end()) {
      if (!acked(m->second.uid, m->second.resource_version)) send_model(node, m->second, "update");
    }
  }
  for (const auto* d : devices) {
    if (!acked(d->uid, d->resource_version)) send_device(node, *d, "update");
  }
}

// --- messages ---------------------------------------------------------------------------------

void DeviceRouter::send_membership(const std::string& node,
                                   const std::vector<const DeviceEntry*>& added,
                                   const std::vector<const DeviceEntry*>& removed) {
  // devicetwin reads {event_id, timestamp, added_devices, removed_devices}; items hold the
  // device id `<ns>/<name>` and its name (KUBEEDGE-WIRE §10.4).
  auto list = [](const std::vector<const DeviceEntry*>& devices) {
    if (devices.empty()) return nlohmann::ordered_json();
    auto out = nlohmann::ordered_json::array();
    for (const auto* d : devices) out.push_back({{"id", key_of(d->ns, d->name)}, {"name", d->name}});
    return out;
  };
  const nlohmann::ordered_json content = {{"event_id", wire::new_message_id()},
                                          {"timestamp", wire::now_millis()},
                                          {"added_devices", list(added)},
                                          {"removed_devices", list(removed)}};
  send(node, Change{.kind = ObjectKind::membership,
                    .operation = std::string(wire::operation::kUpdate),
                    .object = std::make_shared<const std::string>(content.dump()),
                    .ordered = true});
}

void DeviceRouter::send_model(const std::string& node, const ModelEntry& model,
                              std::string operation) {
  send(node, Change{.kind = ObjectKind::devicemodel,
                    .ns = model.ns,
                    .name = model.name,
                    .uid = model.uid,
                    .resource_version = model.resource_version,
                    .operation = std::move(operation),
                    .object = model.raw,
                    .ordered = true});
}

void DeviceRouter::send_device(const std::string& node, const DeviceEntry& device,
                               std::string operation) {
  send(node, Change{.kind = ObjectKind::device,
                    .ns = device.ns,
                    .name = device.name,
                    .uid = device.uid,
                    .resource_version = device.resource_version,
                    .operation = std::move(operation),
                    .object = device.raw,
                    .ordered = true});
}

// Like Downstream::send: the change goes to the node's session thread, into its Delivery.
void DeviceRouter::send(const std::string& node, Change change) {
  if (node_sync_ != nullptr && change.kind != ObjectKind::membership) {
    if (!registry_.owns(node)) return;
    changes_.with({std::string(wire_type(change.kind)), change.operation}).inc();
    return node_sync_->admit(node, std::move(change));  // comes back through deliver()
  }
  deliver(node, std::move(change));
}

void DeviceRouter::deliver(const std::string& node, Change change) {
  auto session = registry_.find_owning(node);
  if (!session) return;
  if (change.kind == ObjectKind::membership || node_sync_ == nullptr) {
    changes_.with({std::string(wire_type(change.kind)), change.operation}).inc();
  }
  asio::post(session->executor(), [session, change = std::move(change)]() mutable {
    session->enqueue(std::move(change));
  });
}

}  // namespace edgehub::hub

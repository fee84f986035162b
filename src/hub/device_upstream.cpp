// DeviceReports: the edge's device-twin requests (see devices.hpp).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/hub/devices.hpp>
#include <edgehub/hub/downstream.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::hub {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Named options: GCC 12 destroys aggregate temporaries inside co_await twice (upstream.cpp).
const kube::RequestOptions kStatus{.priority = kube::Priority::Status};

std::string json_string(std::string_view text) {
  wire::Message m;
  m.set_content_string(text);
  return m.content;
}

// The confirm devicetwin waits for: group twin, parent_msg_id = the request (§3.3). Any
// content stops its retries; "OK" when written, a StatusError when refused.
wire::Message confirm(const wire::Message& request, std::string content) {
  auto m = wire::make_response(request, std::move(content), wire::source::kDeviceController,
                               wire::group::kTwin);
  m.route.resource = "twin";
  return m;
}

// Device-twin payloads come as an embedded object or as a JSON string holding one.
nlohmann::json payload(const wire::Message& m) {
  if (auto text = m.content_string()) {
    return wire::parse_json_bounded(*text, wire::kMaxEdgeJsonDepth);
  }
  return m.content_json();
}

const nlohmann::json& member(const nlohmann::json& j, const char* name) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(name);
  return it == j.end() ? kNull : *it;
}

std::string text_of(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_integer()) return std::to_string(j.get<std::int64_t>());
  if (j.is_number()) return j.dump();
  return {};
}

// A twin value of devicetwin's MsgTwin ({"value","metadata":{"timestamp"}}) as the Device's
// TwinProperty ({"value","metadata":{"timestamp","type"}}), as cloudcore writes it.
std::optional<nlohmann::json> twin_property(const nlohmann::json& value, const std::string& type) {
  const auto& v = member(value, "value");
  if (!v.is_string()) return std::nullopt;
  nlohmann::json metadata = nlohmann::json::object();
  if (const auto ts = text_of(member(member(value, "metadata"), "timestamp")); !ts.empty()) {
    metadata["timestamp"] = ts;
  }
  if (!type.empty()) metadata["type"] = type;
  return nlohmann::json{{"value", v}, {"metadata", std::move(metadata)}};
}

}  // namespace

// Reports for one device waiting for the next PATCH. A report waiting costs its confirm's
// address (node and message id), not a coroutine: when the API server falls behind, batches
// stay open longer and collect more reports, and memory grows with devices, not reports.
struct DeviceReports::Batch {
  std::string ns;
  std::string name;
  std::map<std::string, nlohmann::json> twins;  // property → {reported?, observedDesired?}
  std::optional<std::string> state;
  std::optional<std::string> last_online;
  struct Waiting {
    std::string node;
    std::string msg_id;  // the report's; the confirm's parent_msg_id
    bool twin = true;
  };
  std::vector<Waiting> waiting;
  Clock::time_point first_report;
};

DeviceReports::DeviceReports(kube::Client& client, DeviceRouter& router,
                             metrics::Registry& metrics, DeviceReportsOptions options, Reply reply)
    : client_(client),
      router_(router),
      options_(options),
      reply_(std::move(reply)),
      reports_(metrics.counter("edgehub_device_reports_total",
                               "Device reports from edges, by type (twin, state) and result "
                               "(written, refused, invalid, failed).",
                               {"type", "result"})),
      refused_(metrics.counter("edgehub_device_reports_refused_total",
                               "Device reports refused: the device is not bound to the reporting "
                               "node.")
                   .with({})),
      patches_(metrics.counter("edgehub_device_status_patches_total",
                               "Device status PATCHes written (one per device per batch window).")
                   .with({})),
      patch_failures_(metrics.counter("edgehub_device_status_patch_failures_total",
                                      "Device status PATCHes the API refused or that failed.")
                          .with({})),
      latency_(metrics.histogram("edgehub_device_report_latency_seconds",
                                 "From a device report's arrival to its status PATCH written.",
                                 metrics::latency_buckets())
                   .with({})),
      pending_(metrics.gauge("edgehub_device_reports_pending",
                             "Device reports waiting for the status PATCH that carries them "
                             "(their confirms go out once it is written).")
                   .with({})) {}

DeviceReports::~DeviceReports() { stop(); }

void DeviceReports::stop() {
  stopped_ = true;
  // Unconfirmed reports are sent again by devicetwin (within a minute) to whoever holds the
  // node next.
  for (const auto& [key, batch] : batches_) pending_.add(-static_cast<double>(batch->waiting.size()));
  batches_.clear();
}

bool DeviceReports::handles(wire::ResourceForm form) {
  return form == wire::ResourceForm::membership_detail || form == wire::ResourceForm::device_twin ||
         form == wire::ResourceForm::device_state;
}

asio::awaitable<UpstreamResult> DeviceReports::handle(std::string node, wire::Message request,
                                                      wire::Resource resource) {
  if (resource.form == wire::ResourceForm::membership_detail) {
    co_return co_await membership_detail(node, request);
  }
  co_return co_await report(std::move(node), std::move(request), std::move(resource));
}

asio::awaitable<UpstreamResult> DeviceReports::membership_detail(const std::string& node,
                                                                 const wire::Message& request) {
  if (!router_.synced()) {
    // Without the full device set an answer would make devicetwin drop devices: confirm only,
    // so it stops re-asking; the resync on the cache's first sync sends the membership.
    co_return UpstreamResult{confirm(request, json_string(wire::kContentOK)), std::nullopt};
  }
  // devicetwin's MembershipDetail: {event_id, timestamp, devices:[{id, name}]}. It adds the
  // devices it lacks and removes those not listed (edge/pkg/devicetwin, dealMembershipDetail).
  const auto asked = payload(request);
  nlohmann::ordered_json devices = nlohmann::ordered_json::array();
  for (const auto* d : router_.devices_of(node)) {
    devices.push_back({{"id", d->ns + "/" + d->name}, {"name", d->name}});
  }
  const nlohmann::ordered_json content = {
      {"event_id", text_of(member(asked, "event_id"))},
      {"timestamp", wire::now_millis()},
      {"devices", std::move(devices)}};
  auto m = wire::make_response(request, content.dump(), wire::source::kDeviceController,
                               wire::group::kTwin);
  co_return UpstreamResult{std::move(m), std::nullopt};
}

asio::awaitable<bool> DeviceReports::bound_to(const std::string& node, const std::string& ns,
                                              const std::string& name) {
  if (const auto* d = router_.device(ns, name)) {
    if (d->node == node) co_return true;
    if (router_.synced()) co_return false;
  }
  // Not (yet) cached: the API is the truth.
  auto device = co_await client_.get(kube::resources::devices(), ns, name, kStatus);
  co_return device && device->node_name == node;
}

asio::awaitable<UpstreamResult> DeviceReports::report(std::string node, wire::Message request,
                                                      wire::Resource resource) {
  const bool twin = resource.form == wire::ResourceForm::device_twin;
  const std::string type = twin ? "twin" : "state";
  const auto& ns = resource.ns;
  const auto& name = resource.name;
  const std::string expected_event = twin ? "twin/edge_updated" : "state/update";
  if (resource.event != expected_event) {
    reports_.with({type, "invalid"}).inc();
    spdlog::info("node {}: unsupported device event {} on {}/{}", node, resource.event, ns, name);
    co_return UpstreamResult{
        confirm(request, wire::status_error({.reason = "BadRequest", .code = 400,
                                             .message = "edgehub does not handle device event " +
                                                        resource.event})),
        std::nullopt, true};
  }
  if (!co_await bound_to(node, ns, name)) {
    refused_.inc();
    reports_.with({type, "refused"}).inc();
    spdlog::warn("node {}: refused {} report for device {}/{}: the device is not bound to it",
                 node, type, ns, name);
    co_return UpstreamResult{
        confirm(request, wire::status_error({.reason = "Forbidden", .code = 403,
                                             .message = "device " + ns + "/" + name +
                                                        " is not bound to node " + node,
                                             .name = name, .group = "devices.kubeedge.io",
                                             .kind = "devices"})),
        std::nullopt, true};
  }
  const auto body = payload(request);
  const std::string key = ns + "/" + name;
  auto& slot = batches_[key];
  const bool fresh = !slot;
  if (fresh) {
    slot = std::make_shared<Batch>();
    slot->ns = ns;
    slot->name = name;
    slot->first_report = Clock::now();
  }
  auto batch = slot;
  bool usable = false;
  if (twin) {
    const auto& twins = member(body, "twin");
    if (twins.is_object()) {
      for (const auto& [property, value] : twins.items()) {
        const std::string value_type = text_of(member(member(value, "metadata"), "type"));
        auto& update = batch->twins[property];
        if (auto reported = twin_property(member(value, "actual"), value_type)) {
          update["reported"] = std::move(*reported);
          usable = true;
        }
        if (auto desired = twin_property(member(value, "expected"), value_type)) {
          update["observedDesired"] = std::move(*desired);
          usable = true;
        }
        if (update.is_null()) batch->twins.erase(property);
      }
    }
  } else {
    const auto& device = member(body, "device");
    if (const auto& state = member(device, "state"); state.is_string()) {
      batch->state = state.get<std::string>();
      usable = true;
    }
    for (const char* field : {"lastOnlineTime", "last_online"}) {
      if (const auto& t = member(device, field); t.is_string() && !t.get_ref<const std::string&>().empty()) {
        batch->last_online = t.get<std::string>();
        usable = true;
      }
    }
  }
  if (!usable) {
    if (fresh && batch->waiting.empty() && batch->twins.empty() && !batch->state && !batch->last_online) {
      batches_.erase(key);
    }
    reports_.with({type, "invalid"}).inc();
    spdlog::info("node {}: {} report for device {}/{} carries nothing to write", node, type, ns, name);
    co_return UpstreamResult{
        confirm(request, wire::status_error({.reason = "BadRequest", .code = 400,
                                             .message = "the " + type + " report for device " + key +
                                                        " carries no value"})),
        std::nullopt, true};
  }
  batch->waiting.push_back({std::move(node), std::move(request.header.msg_id), twin});
  pending_.inc();
  if (fresh) schedule_flush(key);
  co_return UpstreamResult{};  // confirmed once the PATCH carrying it is written
}

nlohmann::json DeviceReports::base_twins(const std::string& key, const std::string& ns,
                                         const std::string& name) {
  std::uint64_t cached_version = 0;
  nlohmann::json twins = nlohmann::json::array();
  if (const auto* d = router_.device(ns, name)) {
    cached_version = d->resource_version;
    const auto object = wire::parse_json_bounded(*d->raw, wire::kMaxApiJsonDepth);
    if (const auto& t = member(member(object, "status"), "twins"); t.is_array()) twins = t;
  }
  // Our own last write may be newer than what the watch has brought back yet; once the watch
  // has caught up, the cache is the truth and the copy goes.
  if (const auto w = written_.find(key); w != written_.end()) {
    if (w->second.resource_version > cached_version) {
      twins = w->second.twins;
    } else {
      written_.erase(w);
    }
  }
  return twins;
}

void DeviceReports::schedule_flush(const std::string& key) {
  auto timer = std::make_shared<asio::steady_timer>(client_.executor(), options_.report_window);
  timer->async_wait([this, timer, key](boost::system::error_code ec) {
    if (ec || stopped_) return;
    start_write(key);
  });
}

// Starts the device's PATCH when it may: one per device at a time (the next builds on the
// previous answer), and at most `max_writes` at once. A batch that must wait stays open and
// keeps collecting reports, so a slow API server gets fewer, larger writes.
void DeviceReports::start_write(const std::string& key) {
  if (!batches_.contains(key)) return;
  if (writing_.contains(key) || writing_.size() >= options_.max_writes) {
    if (queued_set_.insert(key).second) queued_.push_back(key);
    return;
  }
  writing_.insert(key);
  asio::co_spawn(client_.executor(), flush(key), asio::detached);
}

void DeviceReports::write_done(const std::string& key) {
  writing_.erase(key);
  // Waiting batches, oldest first; a device still being written goes to the back.
  for (std::size_t n = queued_.size(); n > 0 && writing_.size() < options_.max_writes; --n) {
    auto next = std::move(queued_.front());
    queued_.pop_front();
    queued_set_.erase(next);
    start_write(next);
  }
}

asio::awaitable<void> DeviceReports::flush(std::string key) {
  auto found = batches_.find(key);
  if (found == batches_.end()) {
    write_done(key);
    co_return;
  }
  auto batch = found->second;
  batches_.erase(found);

  nlohmann::json status = nlohmann::json::object();
  if (!batch->twins.empty()) {
    auto twins = base_twins(key, batch->ns, batch->name);
    for (auto& [property, update] : batch->twins) {
      auto it = std::find_if(twins.begin(), twins.end(), [&](const nlohmann::json& t) {
        return t.is_object() && t.value("propertyName", "") == property;
      });
      if (it == twins.end()) {
        twins.push_back({{"propertyName", property}});
        it = twins.end() - 1;
      }
      for (auto& [field, value] : update.items()) (*it)[field] = std::move(value);
    }
    status["twins"] = std::move(twins);
  }
  if (batch->state) status["state"] = *batch->state;
  if (batch->last_online) status["lastOnlineTime"] = *batch->last_online;
  const nlohmann::json patch = {{"status", std::move(status)}};

  patches_.inc();
  auto written = co_await client_.patch_status(kube::resources::devices(), batch->ns, batch->name,
                                               kube::PatchType::Merge, patch.dump());
  if (!stopped_) write_done(key);
  if (written) {
    const auto object = written->json();
    auto& w = written_[key];
    w.resource_version = resource_version_number(written->meta.resource_version);
    w.twins = member(member(object, "status"), "twins");
    latency_.observe(std::chrono::duration<double>(Clock::now() - batch->first_report).count());
  } else {
    patch_failures_.inc();
    written_.erase(key);
    spdlog::warn("devices: writing the status of device {} failed: {}", key,
                 written.error().describe());
  }
  pending_.add(-static_cast<double>(batch->waiting.size()));
  if (stopped_) co_return;
  for (auto& w : batch->waiting) {
    const std::string_view type = w.twin ? "twin" : "state";
    if (!written) {
      // No confirm: devicetwin sends the report again within a minute.
      reports_.with({std::string(type), "failed"}).inc();
      continue;
    }
    reports_.with({std::string(type), "written"}).inc();
    wire::Message request;
    request.header.msg_id = std::move(w.msg_id);
    reply_(w.node, confirm(request, json_string(wire::kContentOK)));
  }
}

}  // namespace edgehub::hub

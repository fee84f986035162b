#pragma once
// Devices: KubeEdge's Device and DeviceModel objects (devices.kubeedge.io/v1beta1) routed to
// the nodes they are bound to, and the edge's device reports written back. API thread only.
//
// DeviceRouter (downstream) follows both resources cluster-wide with Reflectors (devices are
// small: the whole set is cached, indexed by spec.nodeName) and keeps, per node, how many of
// its devices use each model. For a node with a session here it queues, in the node's ordered
// delivery lane (delivery.hpp), exactly what edgecore's devicetwin expects (KUBEEDGE-WIRE §3.5,
// §10.2–4):
//   bind:   membership{added_devices} → DeviceModel insert (node's first device of the model)
//           → Device insert
//   change: Device update (spec, labels or annotations changed; status-only writes are not
//           sent: they are the edge's own reports coming back)
//   unbind: DeviceModel delete (node's last device of the model) → membership{removed_devices}
//           → Device delete
// A device moved between nodes leaves the old node, then joins the new one. On connect a node
// is resynced: membership of all its devices, then its models and devices as `update`.
//
// DeviceReports (upstream) handles the device-twin requests: `membership/detail` (answered with
// the node's device list, which devicetwin applies as the full membership), twin reports
// (`device/<ns>/<name>/twin/edge_updated` → status.twins[].reported / observedDesired) and
// state reports (`device/<ns>/<name>/state/update` → status.state / lastOnlineTime). A node may
// report only for devices bound to it. Reports for one device within `report_window` become
// one merge PATCH of its status; each report is confirmed to the edge once written.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <cstdint>
#include <edgehub/hub/delivery.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <edgehub/hub/registry.hpp>
#include <edgehub/hub/upstream.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/reflector.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <edgehub/wire/message.hpp>
#include <edgehub/wire/resource.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace edgehub::hub {

struct DeviceRouterOptions {
  bool enabled = true;
};

// One Device as the router knows it.
struct DeviceEntry {
  std::string ns;
  std::string name;
  std::string uid;
  std::uint64_t resource_version = 0;
  std::string node;   // spec.nodeName, may be empty
  std::string model;  // spec.deviceModelRef.name (same namespace), may be empty
  std::size_t digest = 0;  // of spec, labels and annotations: what the edge needs to see
  std::shared_ptr<const std::string> raw;  // with kind/apiVersion
};

class DeviceRouter {
 public:
  DeviceRouter(std::shared_ptr<kube::Client> client, Registry& registry,
               metrics::Registry& metrics, DeviceRouterOptions options);
  ~DeviceRouter();
  DeviceRouter(const DeviceRouter&) = delete;
  // Device and model changes pass the node's NodeSync record (first versions wait for the
  // write that adds them; resync deletes what the record holds and the node no longer has).
  void set_node_sync(NodeSync* node_sync) { node_sync_ = node_sync; }
  DeviceRouter& operator=(const DeviceRouter&) = delete;

  // Checks that the CRDs are served, then starts both reflectors. Without the CRDs device
  // routing stays off (logged once) and the router counts as ready.
  void start();
  void stop();
  // Both resources listed once (or devices are off).
  bool ready() const;
  bool synced() const { return devices_synced_ && models_synced_; }

  // Queues what `node` should hold (on connect). Before the first sync it waits for it.
  void resync(const std::string& node);

  // Lookups for DeviceReports.
  const DeviceEntry* device(const std::string& ns, const std::string& name) const;
  std::vector<const DeviceEntry*> devices_of(const std::string& node) const;

 private:
  struct ModelEntry {
    std::string ns;
    std::string name;
    std::string uid;
    std::uint64_t resource_version = 0;
    std::size_t digest = 0;
    std::shared_ptr<const std::string> raw;
  };
  class DeviceEvents;
  class ModelEvents;
  struct Recount;

  void upsert_device(const kube::Object& object);
  void remove_device(const kube::Object& object);
  void resynced_devices(const std::vector<kube::Object>& current);
  void upsert_model(const kube::Object& object);
  void remove_model(const kube::Object& object);
  void resynced_models(const std::vector<kube::Object>& current);
  void after_first_sync();

  // Binding bookkeeping; messages only for nodes with a session here.
  void bind(const DeviceEntry& device, std::string_view operation);
  void unbind(const DeviceEntry& device);
  void send_membership(const std::string& node, const std::vector<const DeviceEntry*>& added,
                       const std::vector<const DeviceEntry*>& removed);
  void send_model(const std::string& node, const ModelEntry& model, std::string operation);
  void send_device(const std::string& node, const DeviceEntry& device, std::string operation);
  void send(const std::string& node, Change change);
 public:
  // Hands a change to the node's owning session (NodeSync calls it for device kinds).
  void deliver(const std::string& node, Change change);
 private:
  bool routes_to(const std::string& node) const;

  std::shared_ptr<kube::Client> client_;
  Registry& registry_;
  NodeSync* node_sync_ = nullptr;
  DeviceRouterOptions options_;
  std::unique_ptr<DeviceEvents> device_events_;
  std::unique_ptr<ModelEvents> model_events_;
  std::shared_ptr<kube::Reflector> device_reflector_;
  std::shared_ptr<kube::Reflector> model_reflector_;
  bool disabled_ = false;  // CRDs not served
  bool devices_synced_ = false;
  bool models_synced_ = false;
  bool stopped_ = false;
  std::set<std::string> waiting_resyncs_;

  std::unordered_map<std::string, DeviceEntry> devices_;  // "ns/name"
  std::unordered_map<std::string, ModelEntry> models_;    // "ns/name"
  std::unordered_map<std::string, std::set<std::string>> by_node_;  // node → device keys
  // model key → node → devices of that model on the node
  std::unordered_map<std::string, std::unordered_map<std::string, int>> model_refs_;

  std::atomic<std::size_t> device_count_{0};
  std::atomic<std::size_t> model_count_{0};
  metrics::Family<metrics::Counter>& changes_;
  metrics::Counter& resyncs_;
};

struct DeviceReportsOptions {
  // Reports for one device within this window become one status PATCH.
  std::chrono::milliseconds report_window{1000};
  // Status PATCHes on their way at once; batches beyond wait (and keep collecting).
  std::size_t max_writes = 64;
};

class DeviceReports {
 public:
  // Sends a confirm to the node's session, whenever the PATCH carrying its report is done.
  using Reply = std::function<void(const std::string& node, wire::Message confirm)>;

  DeviceReports(kube::Client& client, DeviceRouter& router, metrics::Registry& metrics,
                DeviceReportsOptions options, Reply reply);
  ~DeviceReports();

  // True for the device-twin request forms this class answers.
  static bool handles(wire::ResourceForm form);
  boost::asio::awaitable<UpstreamResult> handle(std::string node, wire::Message request,
                                                wire::Resource resource);
  void stop();

 private:
  struct Batch;
  boost::asio::awaitable<UpstreamResult> membership_detail(const std::string& node,
                                                           const wire::Message& request);
  boost::asio::awaitable<UpstreamResult> report(std::string node, wire::Message request,
                                                wire::Resource resource);
  boost::asio::awaitable<bool> bound_to(const std::string& node, const std::string& ns,
                                        const std::string& name);
  void schedule_flush(const std::string& key);
  void start_write(const std::string& key);
  void write_done(const std::string& key);
  boost::asio::awaitable<void> flush(std::string key);
  nlohmann::json base_twins(const std::string& key, const std::string& ns,
                            const std::string& name);

  kube::Client& client_;
  DeviceRouter& router_;
  DeviceReportsOptions options_;
  Reply reply_;
  std::unordered_map<std::string, std::shared_ptr<Batch>> batches_;  // "ns/name"
  // What our last PATCH returned per device (twins and its resourceVersion), so a batch builds
  // on it even before the watch has brought that write back.
  struct Written {
    std::uint64_t resource_version = 0;
    nlohmann::json twins;
  };
  std::unordered_map<std::string, Written> written_;
  std::unordered_set<std::string> writing_;  // devices with a PATCH on its way
  std::deque<std::string> queued_;           // batches waiting for a write slot
  std::unordered_set<std::string> queued_set_;
  bool stopped_ = false;

  metrics::Family<metrics::Counter>& reports_;
  metrics::Counter& refused_;
  metrics::Counter& patches_;
  metrics::Counter& patch_failures_;
  metrics::Histogram& latency_;
  metrics::Gauge& pending_;
};

}  // namespace edgehub::hub

#pragma once
// Upstream: an edge's requests turned into API calls, answered in the exact shapes edgecore
// waits for (KUBEEDGE-WIRE §3.3, §11). A node may only touch its own Node and Lease, the
// pods bound to it, and the configmaps, secrets and service accounts those pods reference,
// within the rules of Kubernetes' NodeRestriction admission (edgehub::authz); anything else is
// answered Forbidden. Runs on the API thread (the kube::Client's executor).

#include <array>
#include <boost/asio/awaitable.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <edgehub/authz/decision.hpp>
#include <edgehub/hub/event_budget.hpp>
#include <edgehub/hub/routing_index.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <edgehub/wire/message.hpp>
#include <edgehub/wire/resource.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::hub {

struct UpstreamResult {
  std::optional<wire::Message> reply;
  // A Node to push down after the reply (edged looks it up after registering, §3.6).
  std::optional<kube::Object> push_node;
  // The request failed or was refused (edgehub_upstream_requests_total{result="error"}).
  bool failed = false;
  // A Lease renewal was written to the API (the session's clock for hub.leaseWriteInterval).
  bool lease_written = false;
};

class DeviceReports;

// Bounds on the edges' requests (see FairQueue for the order in which waiting ones start).
struct UpstreamLimits {
  std::size_t max_in_progress = 256;  // hub.maxUpstreamInProgress
  // Slots one node holds at most; its other requests wait for their turn among the nodes.
  std::size_t max_in_progress_per_node = 4;
  // Requests one node may have waiting; more are refused (429). A session reads no more than
  // hub.maxRequestsInFlightPerNode at once, so only requests an earlier session of the node
  // left behind can add up to this.
  std::size_t max_waiting_per_node = 64;
  // Bytes of waiting requests on the replica at most (hub.maxUpstreamQueuedBytes); beyond it
  // new requests are refused (429) until the queue drains.
  std::uint64_t max_waiting_bytes = 64u << 20;
  // Events one node may record (hub.eventQps, hub.eventBurst; the kubelet's eventRecordQPS
  // and eventBurst): beyond them events are dropped and counted. qps 0: no limit.
  double event_qps = 50;
  double event_burst = 100;
};

// Fixed label values for edge-chosen strings: the operations and resource types Upstream
// handles keep their name, anything else is "other" (a label set an edge cannot grow).
std::string_view upstream_operation_label(std::string_view operation);
std::string_view upstream_type_label(std::string_view type);

// The kube::Client hook behind edgehub_api_requests_total{verb,resource,code} (code: the HTTP
// status, or the transport failure such as ConnectFailed) and
// edgehub_api_request_duration_seconds{verb} (watches are counted, not timed).
kube::RequestObserver api_request_metrics(metrics::Registry& registry);

class Upstream {
 public:
  // At most `limits.max_in_progress` requests are being handled at once (waiting for the API
  // or answered by it); the others wait their turn (FairQueue: shares by class, leases the
  // largest, round-robin between nodes), each as its message and its callback — not as a
  // suspended coroutine. A fleet reconnecting sends tens of thousands of requests within
  // seconds, more than the API's rate limit lets through.
  Upstream(kube::Client& client, RoutingIndex& index, metrics::Registry& registry,
           std::string kube_ca_pem, UpstreamLimits limits = {});
  ~Upstream();
  // Device-twin requests (membership/detail, twin and state reports) go there (devices.hpp).
  void set_devices(DeviceReports* devices) { devices_ = devices; }

  // Called on the client's executor with the answer. The exception is set only by a bug:
  // bad input is answered with an error reply.
  using Done = std::function<void(std::exception_ptr, UpstreamResult)>;
  // Answers `node`'s request: at once when no API call is needed (`done` runs before this
  // returns), otherwise when a slot is free. `peer` is the session's remote address, for the
  // log lines of refusals. `lease_written_recently`: the session's last Lease renewal was
  // written less than hub.leaseWriteInterval ago, so another one need not be. Call on the
  // client's executor.
  void submit(std::string node, std::string peer, wire::Message request, Done done,
              bool lease_written_recently = false);

  // One request being handled.
  struct Call {
    std::string node;
    std::string peer;  // the session's remote address (log lines)
    wire::Message request;
    wire::Resource resource;
    bool lease_written_recently = false;
  };

 private:
  struct Waiting;
  using Handler = boost::asio::awaitable<UpstreamResult> (Upstream::*)(Call&);
  // Where a request goes: answered at once (`answer`), or by one handler coroutine.
  struct Routed {
    std::optional<UpstreamResult> answer;
    Handler handler = nullptr;
    Call call;
  };
  Routed route(std::string node, std::string peer, wire::Message request);
  // False when the node's event budget is spent (the event is dropped, counted, logged).
  bool event_allowed(const std::string& node);
  void count(const Call& c, const UpstreamResult& result);
  static kube::Priority priority(Handler h);
  void start(Call call, Handler handler, Done done);
  boost::asio::awaitable<UpstreamResult> run(Call call, Handler handler);
  void leave(const std::string& node);
  void refuse_busy(const Call& call, const Done& done, std::string_view why);
  UpstreamResult refuse(const Call& c, std::string_view type, const authz::Decision& decision,
                        std::string_view kind, bool object_resp = true,
                        std::string_view group = {});
  std::optional<UpstreamResult> check_names(const Call& c);
  boost::asio::awaitable<UpstreamResult> device_report(Call& c);
  boost::asio::awaitable<UpstreamResult> node_insert(Call& c);
  boost::asio::awaitable<UpstreamResult> node_update(Call& c);
  boost::asio::awaitable<UpstreamResult> node_patch(Call& c);
  boost::asio::awaitable<UpstreamResult> node_status_legacy(Call& c);
  boost::asio::awaitable<UpstreamResult> lease(Call& c);
  boost::asio::awaitable<UpstreamResult> pod_patch(Call& c);
  boost::asio::awaitable<UpstreamResult> pod_status_legacy(Call& c);
  boost::asio::awaitable<UpstreamResult> pod(Call& c);
  boost::asio::awaitable<UpstreamResult> mirror_pod(Call& c);
  boost::asio::awaitable<nlohmann::json> node_labels(const std::string& node,
                                                     const nlohmann::json& patch);
  boost::asio::awaitable<UpstreamResult> config_query(Call& c);
  boost::asio::awaitable<UpstreamResult> service_account_token(Call& c);
  boost::asio::awaitable<UpstreamResult> event(Call& c);
  boost::asio::awaitable<bool> pod_is_on_node(const std::string& node, const std::string& ns,
                                              const std::string& name);

  kube::Client& client_;
  RoutingIndex& index_;
  DeviceReports* devices_ = nullptr;
  std::string kube_ca_pem_;
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Counter>& denied_;
  EventBudget event_budget_;
  metrics::Counter& events_dropped_;
  metrics::Counter& leases_not_written_;
  // The waiting requests and their bounds and gauges (upstream_admission.cpp).
  struct Admission;
  struct AdmissionDeleter {
    void operator()(Admission* a) const;
  };
  static std::unique_ptr<Admission, AdmissionDeleter> make_admission(metrics::Registry& registry,
                                                                     const UpstreamLimits& limits);
  std::unique_ptr<Admission, AdmissionDeleter> admission_;
  std::size_t in_progress_ = 0;
};

}  // namespace edgehub::hub

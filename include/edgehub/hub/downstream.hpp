#pragma once
// Downstream: API changes → messages for the nodes owned here. Runs on the API thread.
//
// Watches (from now on, never a full list) pods bound to a node, edge Nodes, configmaps and
// secrets. An event for a node not owned here is dropped before any work; configmaps and
// secrets go only to owned nodes whose pods reference them (and are deleted from an edge when
// its pods stop referencing them). Changes pass the node's NodeSync record on their way to the
// session. When a node connects — or when a watch lost events (410) — the node is resynced:
// its pods (field selector spec.nodeName), what they reference, and its Node object, compared
// with the record: what the edge ACKed already is skipped, what the record holds and the API
// no longer has is deleted.

#include <boost/asio/awaitable.hpp>
#include <deque>
#include <edgehub/hub/delivery.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <edgehub/hub/registry.hpp>
#include <edgehub/hub/routing_index.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/watcher.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace edgehub::hub {

struct DownstreamOptions {
  std::string edge_node_label = "node-role.kubernetes.io/edge";
  std::size_t max_concurrent_resyncs = 64;
};

// The resourceVersion as a number (etcd's are); 0 when it is not one.
std::uint64_t resource_version_number(std::string_view rv);
// A list item lacks kind/apiVersion; the edge's metaserver needs both (KUBEEDGE-WIRE §2.2).
std::string with_type_meta(const kube::Object& object, std::string_view kind,
                            std::string_view api_version);

class Downstream {
 public:
  // `node_sync` may be null (no records: every resync sends everything, nothing is deleted
  // for objects removed while a node was away).
  Downstream(std::shared_ptr<kube::Client> client, RoutingIndex& index, Registry& registry,
             NodeSync* node_sync, metrics::Registry& metrics, DownstreamOptions options);

  void start();
  void stop();
  // Lists what `node` should hold and queues it for its session (API thread).
  void resync(const std::string& node);
  // True once every watch is established.
  bool ready() const;
  // Hands a change to the node's owning session (NodeSync calls it once the record holds the
  // object).
  void deliver(const std::string& node, Change change);
  // Delete messages for objects the record holds, by kind/namespace/name (unreferenced
  // configmaps and secrets).
  void send_unreferenced(const std::string& node, const std::vector<NewRef>& refs);
  // Sends a pod of an owned node again as listed (the delivery audit's repair): what it
  // references first, then the pod as an update, through the record like any change.
  void redeliver_pod(const std::string& node, const kube::Object& pod);

 private:
  void on_pod(kube::WatchEvent&& ev);
  void on_node(kube::WatchEvent&& ev);
  void on_config(kube::WatchEvent&& ev, RefKind kind);
  void send(const std::string& node, Change change);
  void send_refs(const std::string& node, const std::vector<NewRef>& refs);
  boost::asio::awaitable<std::optional<kube::Object>> read_ref(std::string node, NewRef ref,
                                                               bool* failed);
  void resync_all();
  void pump_resyncs();
  boost::asio::awaitable<void> run_resync(std::string node);
  boost::asio::awaitable<void> resync_node(const std::string& node);
  // A watch-driven change for `node`'s object `uid`: a resync running for that node must not
  // act on its (older) list's view of that object.
  void touch(const std::string& node, const std::string& uid);
  boost::asio::awaitable<void> fetch_ref(std::string node, NewRef ref);

  std::shared_ptr<kube::Client> client_;
  RoutingIndex& index_;
  Registry& registry_;
  NodeSync* node_sync_;
  DownstreamOptions options_;
  std::vector<std::shared_ptr<kube::Watcher>> watchers_;
  std::deque<std::string> resync_queue_;
  std::set<std::string> resync_queued_;
  std::size_t resyncs_running_ = 0;
  // Nodes with a resync running: objects changed by watch events since its list began.
  struct ResyncWindow {
    int running = 0;
    std::unordered_set<std::string> touched;  // uids
  };
  std::unordered_map<std::string, ResyncWindow> resync_windows_;
  bool stopped_ = false;
  metrics::Family<metrics::Counter>& events_;
  metrics::Counter& dropped_;
  metrics::Counter& resyncs_;
  metrics::Counter& resync_failures_;
  metrics::Counter& watch_gaps_;
  metrics::Counter& resync_skipped_;
  metrics::Counter& resync_deletes_;
};

}  // namespace edgehub::hub

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/hub/downstream.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <charconv>

namespace edgehub::hub {

namespace asio = boost::asio;
using kube::EventType;

std::uint64_t resource_version_number(std::string_view rv) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), n);
  return ec == std::errc() && end == rv.data() + rv.size() ? n : 0;
}

std::string with_type_meta(const kube::Object& object, std::string_view kind,
                           std::string_view api_version) {
  if (!object.kind.empty() || object.raw.size() < 2 || object.raw.front() != '{') return object.raw;
  std::string out;
  out.reserve(object.raw.size() + kind.size() + api_version.size() + 32);
  out.append(R"({"kind":")").append(kind).append(R"(","apiVersion":")").append(api_version);
  out.append("\",").append(object.raw, 1);
  return out;
}

namespace {

// Named options: see the GCC 12 note in upstream.cpp (no aggregate temporaries in co_await).
const kube::RequestOptions kBulk{};

// `received`: the watch event's time, for the event → socket latency (unset from lists).
Change make_change(ObjectKind kind, const kube::Object& object, std::string operation,
                   std::string raw, SteadyClock::time_point received = {}) {
  return Change{.kind = kind,
                .ns = object.meta.namespace_,
                .name = object.meta.name,
                .uid = object.meta.uid,
                .resource_version = resource_version_number(object.meta.resource_version),
                .operation = std::move(operation),
                .object = std::make_shared<const std::string>(std::move(raw)),
                .received = received};
}

}  // namespace

Downstream::Downstream(std::shared_ptr<kube::Client> client, RoutingIndex& index,
                       Registry& registry, NodeSync* node_sync, metrics::Registry& metrics,
                       DownstreamOptions options)
    : client_(std::move(client)),
      index_(index),
      registry_(registry),
      node_sync_(node_sync),
      options_(std::move(options)),
      events_(metrics.counter("edgehub_downstream_changes_total",
                              "Object changes queued for owned nodes, by kind and operation.",
                              {"kind", "operation"})),
      dropped_(metrics.counter("edgehub_downstream_dropped_events_total",
                               "Watch events for nodes not owned by this replica, dropped "
                               "before any work.")
                   .with({})),
      resyncs_(metrics.counter("edgehub_resyncs_total", "Node resyncs (on connect, after a watch gap).")
                   .with({})),
      resync_failures_(metrics.counter("edgehub_resync_failures_total",
                                       "Node resyncs that failed to list the node's pods (retried "
                                       "2 s later while the node is owned here).")
                           .with({})),
      watch_gaps_(metrics.counter("edgehub_watch_restarts_total",
                                  "Watches restarted from a fresh resourceVersion after 410 Gone.")
                      .with({})),
      resync_skipped_(metrics.counter("edgehub_resync_skipped_objects_total",
                                      "Objects not re-sent on resync: the node's record shows "
                                      "the edge ACKed that version.")
                          .with({})),
      resync_deletes_(metrics.counter("edgehub_resync_deletes_total",
                                      "Deletes sent on resync for objects the record holds and "
                                      "the API no longer has (or the node no longer needs).")
                          .with({})) {}

void Downstream::start() {
  auto add = [this](kube::WatcherOptions o, kube::Watcher::OnEvent on_event) {
    auto w = kube::Watcher::make(client_, std::move(o), std::move(on_event), [this] {
      watch_gaps_.inc();
      resync_all();
    });
    watchers_.push_back(w);
    w->start();
  };
  add({.resource = kube::resources::pods(), .field_selector = "spec.nodeName!=", .name = "pods"},
      [this](kube::WatchEvent&& ev) { on_pod(std::move(ev)); });
  add({.resource = kube::resources::nodes(), .label_selector = options_.edge_node_label,
       .name = "nodes"},
      [this](kube::WatchEvent&& ev) { on_node(std::move(ev)); });
  add({.resource = kube::resources::configmaps(), .name = "configmaps"},
      [this](kube::WatchEvent&& ev) { on_config(std::move(ev), RefKind::configmap); });
  add({.resource = kube::resources::secrets(), .name = "secrets"},
      [this](kube::WatchEvent&& ev) { on_config(std::move(ev), RefKind::secret); });
}

void Downstream::stop() {
  stopped_ = true;
  for (auto& w : watchers_) w->stop();
}

bool Downstream::ready() const {
  for (const auto& w : watchers_) {
    if (!w->established()) return false;
  }
  return !watchers_.empty();
}

void Downstream::send(const std::string& node, Change change) {
  if (!registry_.owns(node)) return;
  if (node_sync_ != nullptr && change.kind != ObjectKind::node) {
    return node_sync_->admit(node, std::move(change));
  }
  deliver(node, std::move(change));
}

void Downstream::deliver(const std::string& node, Change change) {
  auto session = registry_.find_owning(node);
  if (!session) return;
  events_.with({std::string(wire_type(change.kind)), change.operation}).inc();
  asio::post(session->executor(), [session, change = std::move(change)]() mutable {
    session->enqueue(std::move(change));
  });
}

namespace {

// The content of a delete for an object only known by its record entry.
std::string minimal_object(const SyncedObject& o) {
  nlohmann::json meta = {{"name", o.name}, {"uid", o.uid}};
  if (!o.ns.empty()) meta["namespace"] = o.ns;
  nlohmann::json doc = {{"kind", record_kind(o.kind)}, {"apiVersion", "v1"}, {"metadata", meta}};
  return doc.dump();
}

Change delete_of(const SyncedObject& o) {
  return Change{.kind = o.kind,
                .ns = o.ns,
                .name = o.name,
                .uid = o.uid,
                .resource_version = 0,
                .operation = "delete",
                .object = std::make_shared<const std::string>(minimal_object(o))};
}

}  // namespace

void Downstream::send_unreferenced(const std::string& node, const std::vector<NewRef>& refs) {
  if (refs.empty() || node_sync_ == nullptr) return;
  const NodeSyncRecord* record = node_sync_->record(node);
  if (record == nullptr) return;
  std::vector<Change> deletes;
  for (const auto& ref : refs) {
    const auto kind = ref.kind == RefKind::secret ? ObjectKind::secret : ObjectKind::configmap;
    for (const auto& [uid, o] : record->objects) {
      if (o.kind == kind && o.ns == ref.ns && o.name == ref.name) deletes.push_back(delete_of(o));
    }
  }
  for (auto& d : deletes) send(node, std::move(d));
}

// Each handler runs right after the watch decoded the event (same call): its time starts the
// event → socket latency the sessions measure.
void Downstream::on_pod(kube::WatchEvent&& ev) {
  const auto received = SteadyClock::now();
  const auto& node = ev.object.node_name;
  if (!registry_.owns(node)) {
    dropped_.inc();
    return;
  }
  touch(node, ev.object.meta.uid);
  std::vector<NewRef> dropped;
  if (ev.type == EventType::Deleted) {
    index_.remove_pod(node, ev.object.meta.uid, &dropped);
    send(node, make_change(ObjectKind::pod, ev.object, "delete", ev.object.raw, received));
    send_unreferenced(node, dropped);
    return;
  }
  const auto fresh = index_.upsert_pod(pod_refs(ev.object), &dropped);
  // The pod's configmaps and secrets go first, so its containers find them.
  send_refs(node, fresh);
  send(node, make_change(ObjectKind::pod, ev.object,
                         ev.type == EventType::Added ? "insert" : "update",
                         with_type_meta(ev.object, "Pod", "v1"), received));
  send_unreferenced(node, dropped);
}

void Downstream::redeliver_pod(const std::string& node, const kube::Object& pod) {
  if (!registry_.owns(node)) return;
  std::vector<NewRef> dropped;
  send_refs(node, index_.upsert_pod(pod_refs(pod), &dropped));
  send(node, make_change(ObjectKind::pod, pod, "update", with_type_meta(pod, "Pod", "v1")));
  send_unreferenced(node, dropped);
}

void Downstream::on_node(kube::WatchEvent&& ev) {
  const auto received = SteadyClock::now();
  const auto& node = ev.object.meta.name;
  auto session = registry_.find(node);
  if (!session) {
    dropped_.inc();
    return;
  }
  if (ev.type == EventType::Deleted) {
    // cloudcore closes the session of a deleted node rather than sending the delete.
    spdlog::info("node {}: Node object deleted; closing its session", node);
    if (node_sync_ != nullptr) node_sync_->remove_record(node);
    asio::post(session->executor(), [session] { session->close(CloseReason::node_deleted); });
    return;
  }
  send(node, make_change(ObjectKind::node, ev.object, "update",
                         with_type_meta(ev.object, "Node", "v1"), received));
}

void Downstream::on_config(kube::WatchEvent&& ev, RefKind kind) {
  const auto received = SteadyClock::now();
  const auto nodes = index_.nodes_referencing(kind, ev.object.meta.namespace_, ev.object.meta.name);
  if (nodes.empty()) {
    dropped_.inc();
    return;
  }
  const bool secret = kind == RefKind::secret;
  // cloudcore sends a new ConfigMap as insert, a new Secret as update (KUBEEDGE-WIRE §10.12).
  std::string op = ev.type == EventType::Deleted                  ? "delete"
                   : (ev.type == EventType::Added && !secret)      ? "insert"
                                                                   : "update";
  const auto raw = with_type_meta(ev.object, secret ? "Secret" : "ConfigMap", "v1");
  for (const auto& node : nodes) {
    touch(node, ev.object.meta.uid);
    send(node, make_change(secret ? ObjectKind::secret : ObjectKind::configmap, ev.object, op, raw,
                           received));
  }
}

void Downstream::send_refs(const std::string& node, const std::vector<NewRef>& refs) {
  for (const auto& ref : refs) {
    asio::co_spawn(client_->executor(), fetch_ref(node, ref), asio::detached);
  }
}

asio::awaitable<std::optional<kube::Object>> Downstream::read_ref(std::string node, NewRef ref,
                                                                 bool* failed) {
  const bool secret = ref.kind == RefKind::secret;
  const auto resource = secret ? kube::resources::secrets() : kube::resources::configmaps();
  auto object = co_await client_->get(resource, ref.ns, ref.name, kBulk);
  if (!object) {
    if (!object.error().is(kube::ErrorKind::NotFound)) {
      if (failed != nullptr) *failed = true;
      spdlog::warn("node {}: cannot read {} {}/{}: {}", node, secret ? "secret" : "configmap",
                   ref.ns, ref.name, object.error().describe());
    }
    co_return std::nullopt;  // a later watch event or the edge's own query brings it
  }
  co_return std::move(*object);
}

asio::awaitable<void> Downstream::fetch_ref(std::string node, NewRef ref) {
  auto object = co_await read_ref(node, ref, nullptr);
  if (!object || !index_.references(node, ref.kind, ref.ns, ref.name)) co_return;
  touch(node, object->meta.uid);
  const bool secret = ref.kind == RefKind::secret;
  send(node, make_change(secret ? ObjectKind::secret : ObjectKind::configmap, *object, "update",
                         with_type_meta(*object, secret ? "Secret" : "ConfigMap", "v1")));
}

void Downstream::resync(const std::string& node) {
  if (stopped_ || !resync_queued_.insert(node).second) return;
  resync_queue_.push_back(node);
  pump_resyncs();
}

void Downstream::resync_all() {
  for (const auto& session : registry_.sessions()) resync(session->node());
}

void Downstream::pump_resyncs() {
  while (resyncs_running_ < options_.max_concurrent_resyncs && !resync_queue_.empty()) {
    auto node = std::move(resync_queue_.front());
    resync_queue_.pop_front();
    resync_queued_.erase(node);
    ++resyncs_running_;
    asio::co_spawn(client_->executor(), run_resync(std::move(node)), [this](std::exception_ptr) {
      --resyncs_running_;
      pump_resyncs();
    });
  }
}

void Downstream::touch(const std::string& node, const std::string& uid) {
  if (const auto w = resync_windows_.find(node); w != resync_windows_.end()) w->second.touched.insert(uid);
}

asio::awaitable<void> Downstream::run_resync(std::string node) {
  if (!registry_.owns(node)) co_return;
  ++resync_windows_[node].running;
  std::exception_ptr failure;
  try {
    co_await resync_node(node);
  } catch (...) {
    failure = std::current_exception();
  }
  if (auto w = resync_windows_.find(node); w != resync_windows_.end() && --w->second.running == 0) {
    resync_windows_.erase(w);
  }
  if (failure) std::rethrow_exception(failure);
}

// The node's pods are listed, what they reference read, and both compared with the node's
// record. Watch events keep flowing meanwhile and are newer than the list: an object they
// touched is left to them (neither re-sent from the list nor deleted), and only objects the
// record held before the list began can be found missing.
asio::awaitable<void> Downstream::resync_node(const std::string& node) {
  resyncs_.inc();
  std::set<std::string> recorded_before;
  if (const NodeSyncRecord* r = node_sync_ != nullptr ? node_sync_->record(node) : nullptr) {
    for (const auto& [uid, o] : r->objects) recorded_before.insert(uid);
  }
  const auto& touched = resync_windows_[node].touched;
  kube::ListOptions by_node;
  by_node.field_selector = "spec.nodeName=" + node;
  auto pods = co_await client_->list_all(kube::resources::pods(), "", by_node);
  if (!pods) {
    resync_failures_.inc();
    spdlog::warn("node {}: resync failed listing its pods (retrying in 2 s): {}", node,
                 pods.error().describe());
    // The API server may be restarting: try again while the node is still owned here.
    asio::steady_timer wait(client_->executor());
    wait.expires_after(std::chrono::seconds(2));
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!stopped_ && registry_.owns(node)) resync(node);
    co_return;
  }
  if (!registry_.owns(node)) co_return;
  std::vector<PodRefs> refs;
  refs.reserve(pods->items.size());
  for (const auto& pod : pods->items) refs.push_back(pod_refs(pod));
  index_.set_pods(node, refs, &touched);
  // What the node's pods reference now: the listed pods, and the pods that watch events
  // changed meanwhile as those events left them.
  const std::set<NewRef> needed = index_.refs_of(node);
  // What the node should hold: uid → change.
  std::vector<Change> desired;
  std::set<NewRef> unreadable;  // failed reads: their record entries must stay
  for (const auto& ref : needed) {
    bool failed = false;
    auto object = co_await read_ref(node, ref, &failed);
    if (failed) unreadable.insert(ref);
    if (!object) continue;
    const bool secret = ref.kind == RefKind::secret;
    desired.push_back(make_change(secret ? ObjectKind::secret : ObjectKind::configmap, *object,
                                  "update",
                                  with_type_meta(*object, secret ? "Secret" : "ConfigMap", "v1")));
  }
  // Objects a node missed arrive as `update`, as cloudcore's sync loop sends them (§10.5).
  for (const auto& pod : pods->items) {
    if (touched.contains(pod.meta.uid)) continue;  // a watch event sent a newer state
    desired.push_back(make_change(ObjectKind::pod, pod, "update", with_type_meta(pod, "Pod", "v1")));
  }
  auto node_object = co_await client_->get(kube::resources::nodes(), "", node, kBulk);
  if (!registry_.owns(node)) co_return;

  const NodeSyncRecord* record = node_sync_ != nullptr ? node_sync_->record(node) : nullptr;
  if (record != nullptr) {
    // Deletes first: what the edge may hold and should not (deleted, force-deleted or no
    // longer referenced while the node was away or its owner dead).
    std::set<std::string> wanted;
    for (const auto& c : desired) wanted.insert(c.uid);
    std::vector<Change> deletes;
    for (const auto& [uid, o] : record->objects) {
      const bool ours = o.kind == ObjectKind::pod || o.kind == ObjectKind::configmap ||
                        o.kind == ObjectKind::secret;
      if (!ours || wanted.contains(uid) || touched.contains(uid) || !recorded_before.contains(uid)) {
        continue;
      }
      if (o.kind != ObjectKind::pod &&
          unreadable.contains(NewRef{o.kind == ObjectKind::secret ? RefKind::secret
                                                                  : RefKind::configmap,
                                     o.ns, o.name})) {
        continue;
      }
      deletes.push_back(delete_of(o));
    }
    resync_deletes_.inc(deletes.size());
    for (auto& d : deletes) send(node, std::move(d));
    record = node_sync_->record(node);  // send() may have touched the record
  }
  for (auto& change : desired) {
    if (touched.contains(change.uid)) continue;
    if (record != nullptr) {
      const auto held = record->objects.find(change.uid);
      if (held != record->objects.end() && held->second.acked_version >= change.resource_version) {
        resync_skipped_.inc();
        continue;
      }
    }
    send(node, std::move(change));
    if (node_sync_ != nullptr) record = node_sync_->record(node);
  }
  if (node_object) {
    send(node, make_change(ObjectKind::node, *node_object, "update",
                           with_type_meta(*node_object, "Node", "v1")));
  }
}

}  // namespace edgehub::hub

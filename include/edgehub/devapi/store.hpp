// The in-memory object store behind the devapi server: one global, increasing
// resourceVersion, a bounded history of change events, and watchers fed without blocking.
// Every method is thread-safe; failures throw ApiError shaped like the real API server's.
#pragma once

#include <cstdint>
#include <deque>
#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/patch.hpp>
#include <edgehub/devapi/resources.hpp>
#include <edgehub/devapi/selectors.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace edgehub::devapi {

using nlohmann::json;

enum class EventType { kAdded, kModified, kDeleted, kBookmark, kError };
const char* to_string(EventType type);

// One committed change. `object` carries the new state (for deletions: the last state, with
// the deletion's resourceVersion); `previous` the state before (null for additions).
struct StoreEvent {
  std::uint64_t rv = 0;
  const ResourceInfo* resource = nullptr;
  EventType type = EventType::kAdded;
  std::shared_ptr<const json> object;
  std::shared_ptr<const json> previous;
  std::shared_ptr<const std::string> object_text;  // object serialized once for every watcher
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::int64_t limit = 0;
  std::string continue_token;
  std::optional<std::string> resource_version;
  std::optional<std::string> resource_version_match;
};

struct DeleteOptions {
  std::optional<std::int64_t> grace_period_seconds;
  std::optional<std::string> precondition_uid;
  std::optional<std::string> precondition_resource_version;
};

struct DeleteResult {
  json body;          // the object (pods, objects kept for graceful deletion) or a Status
  bool gone = false;  // false: only marked for deletion
};

// The receiving end of a watch. deliver()/close() run with the store lock held: they must
// only queue work and return.
class Watcher {
 public:
  virtual ~Watcher() = default;
  // `type` is already adjusted for this watcher's selectors (e.g. MODIFIED -> DELETED for an
  // object that stopped matching).
  virtual void deliver(EventType type, const StoreEvent& event) = 0;
  // A bookmark at resourceVersion rv; initial_events_end marks the end of a WatchList.
  virtual void bookmark(std::uint64_t rv, bool initial_events_end) = 0;
  // Stop streaming (drop_watchers / server stop).
  virtual void close() = 0;
};

struct WatchOptions {
  std::string namespace_;  // empty: every namespace
  std::string label_selector;
  std::string field_selector;
  // Start point. nullopt or "0": send the current objects as ADDED first, then changes.
  std::optional<std::string> resource_version;
  std::optional<std::string> resource_version_match;
  bool send_initial_events = false;
  bool allow_bookmarks = false;
};

class Store {
 public:
  explicit Store(std::size_t history_limit = 10000);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ns is ignored ("") for cluster-scoped resources. Objects are full JSON objects
  // (apiVersion/kind optional on input); results carry metadata filled in by the store.
  json create(const ResourceInfo& resource, const std::string& ns, json object);
  json get(const ResourceInfo& resource, const std::string& ns, const std::string& name) const;
  // A `<Kind>List` with metadata.resourceVersion (and continue/remainingItemCount).
  json list(const ResourceInfo& resource, const std::string& ns,
            const ListOptions& options = {}) const;
  // PUT. A non-empty metadata.resourceVersion is a precondition (409 on mismatch).
  // status_subresource: only .status is taken from `object`; otherwise .status is kept.
  json update(const ResourceInfo& resource, const std::string& ns, const std::string& name,
              json object, bool status_subresource = false);
  json patch(const ResourceInfo& resource, const std::string& ns, const std::string& name,
             PatchType type, const json& patch, bool status_subresource = false);
  DeleteResult remove(const ResourceInfo& resource, const std::string& ns, const std::string& name,
                      const DeleteOptions& options = {});
  // DELETE on a collection: deletes (or marks) every object matching the selectors.
  json remove_collection(const ResourceInfo& resource, const std::string& ns,
                         const ListOptions& options, const DeleteOptions& delete_options);

  // The same operations by resource name ("pods", "leases.coordination.k8s.io",
  // "nodesyncs.edgehub.io"); an unknown name throws std::invalid_argument.
  json create(std::string_view resource, const std::string& ns, json object) {
    return create(resource_by_name(resource), ns, std::move(object));
  }
  json get(std::string_view resource, const std::string& ns, const std::string& name) const {
    return get(resource_by_name(resource), ns, name);
  }
  json list(std::string_view resource, const std::string& ns,
            const ListOptions& options = {}) const {
    return list(resource_by_name(resource), ns, options);
  }
  json update(std::string_view resource, const std::string& ns, const std::string& name,
              json object, bool status_subresource = false) {
    return update(resource_by_name(resource), ns, name, std::move(object), status_subresource);
  }
  json patch(std::string_view resource, const std::string& ns, const std::string& name,
             PatchType type, const json& patch_body, bool status_subresource = false) {
    return patch(resource_by_name(resource), ns, name, type, patch_body, status_subresource);
  }
  DeleteResult remove(std::string_view resource, const std::string& ns, const std::string& name,
                      const DeleteOptions& options = {}) {
    return remove(resource_by_name(resource), ns, name, options);
  }

  // Registers a watcher; replays history after the requested resourceVersion (or the current
  // objects) through watcher.deliver before returning. Throws ApiError 410 "Expired" when the
  // resourceVersion is older than the history window — callers on a watch stream turn that
  // into an ERROR event. Returns the watch id for unwatch()/request_bookmark().
  std::uint64_t watch(const ResourceInfo& resource, const WatchOptions& options,
                      std::shared_ptr<Watcher> watcher);
  void unwatch(std::uint64_t id);
  // Asks the store to send a BOOKMARK at the current resourceVersion to watcher `id`, ordered
  // after every event already delivered to it.
  void request_bookmark(std::uint64_t id);

  std::uint64_t current_resource_version() const;
  std::size_t watcher_count() const;

  // Test hooks. expire_history: forget every event so far; a watch from an older
  // resourceVersion gets 410 Expired. close_watchers: close every watch.
  void expire_history();
  void close_watchers();

  // Persistence for a devapi process that restarts the way kube-apiserver restarts over etcd:
  // snapshot() is every object and the current resourceVersion; restore() replaces the
  // contents with a snapshot. resourceVersions continue from the snapshot's; the event
  // history starts empty, so a watch resuming from before the restart gets 410 Expired.
  // Open watches are closed. Throws std::invalid_argument on a malformed snapshot.
  json snapshot() const;
  void restore(const json& snapshot);
  // snapshot()/restore() through a file (written to a temporary and renamed). load() throws
  // std::runtime_error naming the file when it cannot be read or parsed.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  struct Watch {
    const ResourceInfo* resource;
    std::string ns;
    LabelSelector labels;
    FieldSelector fields;
    std::shared_ptr<Watcher> sink;
  };
  using Bucket = std::map<std::string, std::shared_ptr<const json>>;

  Bucket& bucket(const ResourceInfo& resource);
  const Bucket* find_bucket(const ResourceInfo& resource) const;
  std::uint64_t next_rv();
  void commit(const ResourceInfo& resource, EventType type, std::shared_ptr<const json> object,
              std::shared_ptr<const json> previous);
  void dispatch(const Watch& watch, const StoreEvent& event) const;
  json store_update(const ResourceInfo& resource, std::shared_ptr<const json> old, json updated,
                    bool status_subresource);
  DeleteResult delete_locked(const ResourceInfo& resource, const std::string& key,
                             const DeleteOptions& options);
  std::uint64_t parse_rv(const std::string& text) const;

  mutable std::mutex mutex_;
  std::uint64_t rv_ = 1;
  std::uint64_t compacted_rv_ = 1;  // history covers (compacted_rv_, rv_]
  std::size_t history_limit_;
  std::deque<StoreEvent> history_;
  std::unordered_map<const ResourceInfo*, Bucket> buckets_;
  std::map<std::uint64_t, Watch> watches_;
  std::uint64_t next_watch_id_ = 1;
};

}  // namespace edgehub::devapi

#pragma once
// NodeSync: which replica owns a node, and which objects its edge holds.
//
// One `NodeSync` object (edgehub.io/v1alpha1, cluster-scoped, named after the node) per edge
// node replaces KubeEdge's one ObjectSync per (node, object):
//   status.owner        the replica that holds the node's session (hub.id)
//   status.ownerSince   when it claimed the node
//   status.objects[]    {kind, namespace, name, uid, ackedResourceVersion} for every object the
//                       edge holds or may hold
//
// Rules that make it safe through crashes:
// - An object enters the record *before* its first send (a write, batched per node), so a
//   replica that dies right after sending can never leave an object on an edge that no record
//   knows about. Deletes leave the record after the edge ACKed them.
// - ACKs only raise `ackedResourceVersion`; they are folded in by coalesced writes, at most one
//   per node per flush interval (and at release or drain). Losing them costs a re-send, never
//   an object.
// - Every write carries the record's resourceVersion: a replica whose claim was superseded
//   fails its next write (Conflict), re-reads, and learns it lost the node.
// - On connect the replica claims the node (owner = itself, resourceVersion precondition,
//   re-read and retry on conflict). Every replica watches NodeSyncs; one that sees another
//   replica claim a node it has a session for closes that session at once.
//
// Runs on the API thread; not thread-safe.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <edgehub/hub/delivery.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/watcher.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

namespace edgehub::hub {

// One object an edge holds (or was sent).
struct SyncedObject {
  ObjectKind kind = ObjectKind::pod;
  std::string ns;
  std::string name;
  std::string uid;
  std::uint64_t acked_version = 0;  // 0: sent (or about to be), not ACKed yet

  bool operator==(const SyncedObject&) const = default;
};

struct NodeSyncRecord {
  std::string node;
  std::string owner;
  std::string owner_since;
  std::string resource_version;
  std::map<std::string, SyncedObject> objects;  // by uid

  // The NodeSync object as JSON, ready for PUT .../status.
  std::string to_json() const;
  // From an API object; objects with an unknown kind are kept out (and counted by the caller).
  static std::optional<NodeSyncRecord> from_json(std::string_view raw);
};

// "Pod", "ConfigMap", ... as written in status.objects[].kind.
std::string_view record_kind(ObjectKind kind);
std::optional<ObjectKind> parse_record_kind(std::string_view kind);
// RFC 3339, UTC, seconds.
std::string rfc3339_now();

struct NodeSyncOptions {
  std::string replica;                            // hub.id
  std::chrono::milliseconds flush_interval{5000};  // coalesced ACK writes, per node
  std::chrono::milliseconds stall_after{15000};    // un-ACKed this long: resync the node
  int max_claim_attempts = 8;
  std::size_t max_concurrent_claims = 256;  // more wait in a queue of names
};

class NodeSync {
 public:
  // Hands a change to the node's session (the record already holds its object).
  using Deliver = std::function<void(const std::string& node, Change change)>;
  // The claim for a node finished: owned, or failed (reason given).
  using Claimed = std::function<void(const std::string& node, std::uint64_t session_id, bool ok,
                                     const std::string& reason)>;
  // Another replica claimed a node this replica held.
  using Lost = std::function<void(const std::string& node, const std::string& new_owner)>;
  // Objects of an owned node were sent but not ACKed for `stall_after`: resync the node (a
  // safety net: whatever dropped the send, the record says the edge may lack them).
  // `times`: consecutive stall periods without any ACK from the node.
  using Stalled = std::function<void(const std::string& node, int times)>;

  NodeSync(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
           NodeSyncOptions options, Deliver deliver, Claimed claimed, Lost lost);
  ~NodeSync();

  // Watches NodeSyncs for claims by other replicas; flushes dirty records on a timer.
  void start();
  void stop();
  bool ready() const;

  // Claims `node` for the session `session_id` (a connect). Claimed() reports the outcome,
  // for that session. Session ids grow with each connect on this replica, so a claim for an
  // older session than the one the node is claimed or owned for is stale and ignored (claims
  // are posted from the sessions' threads and may arrive out of order). A claim repeated for
  // the session the node is owned for reports it owned again (a confirmation that got lost);
  // one repeated while that session's claim runs changes nothing.
  void claim(const std::string& node, std::uint64_t session_id);
  // An object change for an owned node. A first version of an object waits for the record
  // write that adds it; everything else is delivered at once. A delete of an object the
  // record does not hold is dropped (the edge never had it).
  void admit(const std::string& node, Change change);
  // The edge ACKed `change` (folded into the next coalesced write).
  void acked(const std::string& node, const Change& change);
  // The node's session `session_id` closed here: flush what is pending, then forget the node.
  // Ignored when the node is claimed for another (newer) session by now: a late release must
  // not forget the record under the session that replaced it.
  void release(const std::string& node, std::uint64_t session_id);
  void on_stalled(Stalled stalled) { stalled_ = std::move(stalled); }
  // The Node object was deleted: forget the node and delete its record (a node registering
  // again under that name starts from an empty record).
  void remove_record(const std::string& node);
  // Writes every dirty record now (drain); completes when all writes finished or failed.
  boost::asio::awaitable<void> flush_all();

  // The record of an owned node, null when not owned (or not loaded yet).
  const NodeSyncRecord* record(const std::string& node) const;
  // The session the node is owned for; 0 when it is not owned here.
  std::uint64_t owner_session(const std::string& node) const;
  // Where the node's claim stands, for logs and /debug/nodes: "owned", "claiming",
  // "waiting" (for a claim slot), "released" or "none".
  std::string_view claim_state(const std::string& node) const;
  std::size_t nodes() const { return states_.size(); }

 private:
  struct State {
    NodeSyncRecord record;
    std::uint64_t session_id = 0;
    bool claim_pending = false;
    bool claiming = false;  // do_claim runs for session_id
    bool owned = false;
    bool released = false;
    std::uint64_t epoch = 0;    // tells a forgotten-then-reclaimed node from the old one
    bool busy = false;          // a writer coroutine runs for this node
    bool dirty = false;         // record changed since the last write
    bool queued = false;        // in due_, waiting for its coalesced write
    bool claim_queued = false;  // in claim_queue_, waiting for a claim slot
    std::uint64_t generation = 0;
    std::vector<Change> waiting;  // first versions waiting for the record write, in order
    // Objects in the record not ACKed yet, and since when (checked by the tick).
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> unacked;
    int stalls = 0;  // consecutive stall periods without an ACK
    std::chrono::steady_clock::time_point last_write{};
  };
  enum class WriteResult { ok, conflict_kept, lost, failed };

  State* find(const std::string& node);
  State* find(const std::string& node, std::uint64_t epoch);
  void kick(const std::string& node);
  boost::asio::awaitable<void> work_on(std::string node, std::uint64_t epoch, bool claim_slot);
  boost::asio::awaitable<bool> do_claim(std::string node, std::uint64_t epoch);
  std::optional<std::string> claim_body(const std::string& node, State& s,
                                        const kube::Object& got, std::string& reason);
  boost::asio::awaitable<WriteResult> write(std::string node, std::uint64_t epoch);
  void on_event(kube::WatchEvent&& ev);
  void lose(const std::string& node, const std::string& owner);
  void schedule_write(const std::string& node, State& s);
  void release_claim_slot();
  void schedule_tick();
  void check_stalls();

  std::shared_ptr<kube::Client> client_;
  NodeSyncOptions options_;
  Deliver deliver_;
  Claimed claimed_;
  Lost lost_;
  Stalled stalled_;
  std::unordered_map<std::string, std::unique_ptr<State>> states_;
  // Dirty records by the time their coalesced write is due (one entry per queued State),
  // so the tick writes each when due rather than all dirty records at once.
  struct Due {
    std::chrono::steady_clock::time_point at;
    std::string node;
    std::uint64_t epoch;
    bool operator>(const Due& o) const { return at > o.at; }
  };
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  std::shared_ptr<kube::Watcher> watcher_;
  std::unique_ptr<boost::asio::steady_timer> tick_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::deque<std::pair<std::string, std::uint64_t>> claim_queue_;  // node, epoch
  std::size_t claims_running_ = 0;
  bool stopped_ = false;
  bool flushing_ = false;
  std::chrono::steady_clock::time_point last_stall_check_{};
  std::uint64_t epochs_ = 0;

  metrics::Family<metrics::Counter>& writes_;
  metrics::Counter& claims_;
  metrics::Counter& lost_claims_;
  metrics::Counter& conflicts_;
  metrics::Counter& held_back_;
  metrics::Counter& unknown_deletes_;
  metrics::Counter& already_acked_;
  metrics::Counter& stall_resyncs_;
};

}  // namespace edgehub::hub

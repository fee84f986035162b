#pragma once
// Delivery: the per-node queue of cloud→edge object messages that need the edge's ACK.
//
// - Keyed by object UID: a newer version replaces an unsent older one, and a delete wins.
// - At most `window` messages await an ACK at once (edgecore drops the oldest of more than
//   100 buffered messages, so the window stays well below that).
// - One message per object in flight: a newer version waits for the older one's ACK, so a
//   retry can never overtake a newer version (per-object order is kept).
// - Un-ACKed messages are re-sent after `retry_interval`, then with doubling intervals up to
//   `max_retry_interval`; nothing is ever dropped while the session lives.
// - Ordered changes (a node's devices, device models and membership messages) go through one
//   lane of their own, in enqueue order, one at a time: the next is first sent only once the
//   previous one is ACKed (membership messages, which the edge never ACKs, once written). So
//   membership → model → device holds even when a message is retried (KUBEEDGE-WIRE §3.5).
//
// A Delivery lives on its node's I/O thread and takes no locks. Time is injected.

#include <chrono>
#include <cstdint>
#include <edgehub/wire/message.hpp>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace edgehub::hub {

using SteadyClock = std::chrono::steady_clock;

// `membership` is not an object: a device-twin group message (no ACK, no resourceVersion).
enum class ObjectKind { pod, configmap, secret, node, device, devicemodel, membership };
// The resource type on the wire ("pod", "configmap", ...).
std::string_view wire_type(ObjectKind kind);
// The route source the edge expects for the kind (devices come from the devicecontroller).
std::string_view wire_source(ObjectKind kind);

// One version of one object for one node.
struct Change {
  ObjectKind kind = ObjectKind::pod;
  std::string ns;  // empty for cluster-scoped objects
  std::string name;
  std::string uid;
  std::uint64_t resource_version = 0;
  std::string operation;                        // insert, update or delete
  std::shared_ptr<const std::string> object;    // raw JSON, shared between nodes
  // When its watch event was decoded; unset for objects read by a list or get (resyncs).
  SteadyClock::time_point received{};
  // Sent through the ordered lane (see above). An ordered delete means "leaves the node", not
  // the object's end: it is not remembered as deleted, so the object can come back.
  bool ordered = false;
};

struct DeliveryOptions {
  std::size_t window = 16;
  std::chrono::milliseconds retry_interval{5000};
  std::chrono::milliseconds max_retry_interval{60000};
  std::chrono::milliseconds remember_deletes{600000};
};

struct DeliveryStats {
  std::uint64_t sent = 0;        // first sends
  std::uint64_t retried = 0;     // re-sends after a timeout
  std::uint64_t acked = 0;
  std::uint64_t superseded = 0;  // unsent versions replaced by newer ones
  std::uint64_t stale = 0;       // versions older than what is queued or ACKed, dropped
};

class Delivery {
 public:
  // `received` is the change's watch-event time on its first send, unset on retries (the
  // session measures event → socket latency with it).
  using Send = std::function<void(const std::string& frame, SteadyClock::time_point received)>;
  // Called once the edge has ACKed a change (NodeSync folds it into the record), with the
  // time from first send to ACK.
  using Acked = std::function<void(const Change& change, SteadyClock::duration latency)>;
  using Now = std::function<SteadyClock::time_point()>;

  Delivery(DeliveryOptions options, Send send, Acked acked, Now now);

  void enqueue(Change change);
  // An upstream `response`; true if it completed one of our messages.
  bool on_ack(const std::string& parent_msg_id);
  // Re-sends what timed out; call at or after next_deadline().
  void on_timer();
  std::optional<SteadyClock::time_point> next_deadline() const;

  std::size_t queued() const { return ready_.size() + lane_.size(); }
  std::size_t in_flight() const { return by_msg_id_.size(); }
  // The last ACKed resource version of an object, 0 if none.
  std::uint64_t acked_version(const std::string& uid) const;
  const DeliveryStats& stats() const { return stats_; }

  // One object's state, for /debug/nodes?node=: the version waiting to be sent, the one
  // awaiting its ACK (and since when), the last ACKed one.
  struct ObjectState {
    std::string uid;
    std::string pending_operation;
    std::uint64_t pending_version = 0;
    std::string flight_operation;
    std::uint64_t flight_version = 0;
    SteadyClock::time_point flight_sent{};
    std::uint64_t acked_version = 0;
  };
  std::vector<ObjectState> objects() const;

 private:
  struct Flight {
    Change change;
    std::string msg_id;
    std::string frame;
    SteadyClock::time_point first_sent;
    SteadyClock::time_point deadline;
    std::chrono::milliseconds interval;
  };
  // Most entries of an idle node only remember an ACKed version: the change and the flight
  // are held by pointer so that such an entry costs a few words, not both structs.
  struct Entry {
    std::unique_ptr<Change> pending;  // waiting to be sent
    std::unique_ptr<Flight> flight;   // sent, awaiting its ACK
    std::uint64_t acked_version = 0;
    bool in_ready = false;
    std::uint64_t lane_seq = 0;  // its place in lane_ while pending there, else 0
  };
  // One place in the ordered lane: an entry's pending change (valid while the entry's
  // lane_seq is still `seq`), or a message the edge does not ACK.
  struct LaneItem {
    std::string uid;
    std::uint64_t seq = 0;
    std::optional<Change> unacked;
  };
  void forget_old_deletes(SteadyClock::time_point now);

  void pump();
  void pump_lane();
  void send_first(Entry& entry, Change change);
  void send_unacked(const Change& change);

  DeliveryOptions options_;
  Send send_;
  Acked acked_;
  Now now_;
  // By uid. A map: an idle node holds one or two entries, and a hash table's bucket array
  // (~100 bytes) would cost as much again as its one node.
  std::map<std::string, Entry, std::less<>> entries_;
  std::unordered_map<std::string, std::string> by_msg_id_;  // msg_id → uid
  // uids with a sendable pending change, and the ordered lane (lists: empty, they allocate
  // nothing, where a std::deque holds ~600 bytes per idle node)
  std::list<std::string> ready_;
  std::list<LaneItem> lane_;            // ordered changes, in order
  std::uint64_t lane_counter_ = 0;
  std::string lane_flight_;             // uid of the ordered change in flight
  // UIDs whose delete the edge ACKed. A UID is never reused, so any later version of one is
  // stale — a list answered before the delete must not bring the object back. Kept for a
  // while, then forgotten (no list takes that long).
  std::unordered_map<std::string, SteadyClock::time_point> deleted_;
  DeliveryStats stats_;
};

}  // namespace edgehub::hub

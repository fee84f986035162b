#pragma once
// Session: one edge node's WebSocket connection, pinned to one I/O thread for its life.
//
// It reads KubeEdge messages, answers keepalives (by resetting the liveness timer: cloudcore's
// rule is that only `keepalive` messages count), completes deliveries on ACKs, hands every
// other request to its SessionHost, and writes through a bounded queue: a reader too slow to
// keep its queue under the cap is disconnected. Everything of a session runs on its executor;
// other threads reach it with post().

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <edgehub/hub/delivery.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <edgehub/wire/message.hpp>
#include <memory>
#include <string>

namespace edgehub::hub {

// Counters every session adds to (atomics; shared by all sessions of a replica).
struct SessionMetrics {
  metrics::Counter* messages_in = nullptr;
  metrics::Counter* messages_out = nullptr;
  metrics::Counter* bytes_in = nullptr;
  metrics::Counter* bytes_out = nullptr;
  metrics::Counter* keepalives = nullptr;
  metrics::Counter* acks = nullptr;
  metrics::Counter* retries = nullptr;
  metrics::Counter* bad_messages = nullptr;
  metrics::Counter* empty_messages = nullptr;
  metrics::Gauge* queued = nullptr;  // messages waiting or awaiting an ACK, all sessions
  // Watch event decoded → its frame written to the socket (first sends only).
  metrics::Histogram* internal_latency = nullptr;
};

struct SessionOptions {
  std::chrono::milliseconds keepalive_timeout{30'000};
  std::uint64_t write_queue_bytes = 4u << 20;
  std::uint64_t max_message_bytes = 8u << 20;
  // Requests handed to the host and not yet answered, at most: at the limit the session stops
  // reading until request_done() (hub.maxRequestsInFlightPerNode).
  std::uint32_t max_requests_in_flight = 32;
  DeliveryOptions delivery;
  std::shared_ptr<const SessionMetrics> metrics;  // optional
  // Sent in the upgrade response as X-Edgehub-Replica (which replica an agent reached).
  std::string replica_id;
};

enum class CloseReason {
  peer_closed,        // the edge closed or dropped the connection
  keepalive_timeout,  // no keepalive within keepalive_timeout
  slow_reader,        // write queue over its cap
  bad_message,        // undecodable frame (the protocol treats it as fatal)
  replaced,           // a newer connection for the same node
  shutdown,           // the hub is stopping
  node_deleted,       // the Node object was deleted
  shed,               // rebalancing or drain: reconnect elsewhere (close code 1012)
  claimed,            // another replica claimed the node (its agent connected there)
  claim_failed,       // the NodeSync claim could not be written (API unreachable)
  stalled,            // recorded objects stayed un-ACKed through a resync: start afresh
  write_failed,
  revoked,            // the node or its certificate was revoked (hub.revocation.configMap)
};
std::string_view to_string(CloseReason reason);

class Session;

// What a session reports to the hub. Called on the session's executor.
class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual void on_open(const std::shared_ptr<Session>& session) = 0;
  // An upstream request (anything but keepalive, ACK and the empty shutdown message). The
  // host calls the session's request_done() once for each, on the session's executor, when
  // it has been handled (answered or not).
  virtual void on_request(const std::shared_ptr<Session>& session, wire::Message message) = 0;
  // The edge ACKed a delivered object (NodeSync folds it in; metrics observe the latency).
  virtual void on_delivered(Session& session, const Change& change,
                            std::chrono::steady_clock::duration latency) = 0;
  virtual void on_closed(Session& session, CloseReason reason) = 0;
};

struct SessionCounters {
  std::uint64_t messages_in = 0;
  std::uint64_t messages_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t keepalives = 0;
  std::uint64_t acks = 0;
  std::uint64_t unmatched_acks = 0;
  std::uint64_t empty_messages = 0;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  virtual ~Session() = default;

  const std::string& node() const { return node_; }
  const std::string& peer() const { return peer_; }
  std::uint64_t id() const { return id_; }
  std::chrono::steady_clock::time_point opened_at() const { return opened_at_; }
  virtual boost::asio::any_io_executor executor() = 0;

  // Queues one encoded message for the edge (session executor only). `received` is the time
  // of the watch event the frame comes from (for the event → socket latency), else unset.
  virtual void send(std::string frame, SteadyClock::time_point received) = 0;
  void send(std::string frame) { send(std::move(frame), SteadyClock::time_point{}); }
  void send(const wire::Message& message) { send(wire::encode(message)); }
  // Closes with a WebSocket close frame (session executor only); idempotent.
  virtual void close(CloseReason reason) = 0;
  virtual bool closed() const = 0;

  // Queues an object change for reliable delivery (session executor only).
  virtual void enqueue(Change change) = 0;
  // One request given to SessionHost::on_request was handled (session executor only).
  virtual void request_done() = 0;
  // Requests given to the host and not yet handled.
  std::uint32_t requests_in_flight() const { return requests_in_flight_; }
  const Delivery& delivery() const { return *delivery_; }
  const SessionCounters& counters() const { return counters_; }
  std::size_t queued_bytes() const { return queued_bytes_; }
  // When this session's last Lease renewal was written to the API (hub.leaseWriteInterval);
  // unset until its first. Session executor only.
  SteadyClock::time_point lease_written_at() const { return lease_written_at_; }
  void set_lease_written_at(SteadyClock::time_point t) { lease_written_at_ = t; }

 protected:
  Session(std::string node, std::string peer, std::uint64_t id)
      : node_(std::move(node)), peer_(std::move(peer)), id_(id),
        opened_at_(std::chrono::steady_clock::now()) {}

  std::string node_;
  std::string peer_;
  std::uint64_t id_;
  std::chrono::steady_clock::time_point opened_at_;
  std::unique_ptr<Delivery> delivery_;
  SessionCounters counters_;
  std::size_t queued_bytes_ = 0;
  std::uint32_t requests_in_flight_ = 0;
  SteadyClock::time_point lease_written_at_{};
};

}  // namespace edgehub::hub

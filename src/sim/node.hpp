#pragma once
// One simulated edge node: its connection (a Link per attempt), the edgecore-like protocol
// behaviour and the objects it has received.

#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/wire/message.hpp>
#include <edgehub/wire/resource.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace edgehub::sim {

struct Worker;

// One connection attempt: TCP connect, TLS, WebSocket upgrade, read loop, write queue.
class Link {
 public:
  virtual ~Link() = default;
  virtual void start() = 0;
  virtual void send(std::string payload) = 0;
  // Closes without calling back into the node.
  virtual void close() = 0;
  // After a paused read (--slow-reader).
  virtual void resume_read() = 0;
  // Stops calling back into the node and reading, sends nothing more, but keeps the TCP
  // connection open: to the hub it looks like an edge that hung (half-open until a timeout).
  virtual void abandon() = 0;
};

class Node {
 public:
  Node(Worker& worker, std::string name, int index);

  const std::string& name() const { return name_; }
  int index() const { return index_; }
  net::CertAndKey& credentials() { return creds_; }

  void begin(std::chrono::milliseconds delay);  // first dial after `delay`
  void dial_now();                               // called by the worker's dial slots
  void shutdown();                               // no more reconnects

  // Certificate rotation (with a certificate service): arms the renewal at the configured
  // fraction of the current certificate's life; at the deadline a CSR goes to the service on
  // the fleet's certificate thread, and the answer comes back to renewed()/renewal_failed().
  void schedule_rotation();
  void renewed(net::CertAndKey credentials);
  void renewal_failed(const std::string& reason);

  // Callbacks from the current Link; `epoch` identifies the attempt.
  // `replica`: the hub's X-Edgehub-Replica upgrade response header ("" when absent).
  void on_connected(std::uint32_t epoch, std::string replica);
  // Returns false when the link must pause reading (slow reader); resume_read() follows.
  bool on_message(std::uint32_t epoch, std::string_view payload);
  void on_closed(std::uint32_t epoch, const boost::system::error_code& ec, std::string_view stage,
                 bool was_connected);

  // Leaves the current connection open but dead (Link::abandon) and dials a new one at once.
  // Returns false when there is no connection to abandon.
  bool abandon();

  nlohmann::json state_json() const;
  const std::vector<ObjectRecord>& objects() const { return objects_; }

 private:
  enum class Request : std::uint8_t {
    lease_query, lease_insert, lease_update, node_insert, node_patch, pod_patch,
    configmap_query, secret_query, twin_report
  };
  // A device as devicetwin holds it: membership, and the properties of its Device object.
  struct SimDevice {
    std::string id;  // <ns>/<name>
    bool member = false;
    std::vector<std::pair<std::string, std::string>> properties;  // name, desired value
  };
  struct Pending {
    std::string msg_id;
    std::chrono::steady_clock::time_point sent;
    Request kind;
  };

  void schedule_reconnect();
  void rotate();
  void send(const wire::Message& message);
  void send_request(wire::Message message, Request kind);
  wire::Message make(std::string_view source, std::string_view group, std::string_view operation,
                     std::string resource) const;

  void send_keepalive();
  void send_membership_detail();
  void send_lease_query();
  void send_lease_write(bool insert);
  void send_node_insert();
  void send_node_status();
  void send_pod_status(const std::string& ns, const std::string& pod, const std::string& uid);

  // Periodic work, each re-arms itself while the attempt `epoch` lives.
  void keepalive_tick(std::uint32_t epoch);
  void lease_tick(std::uint32_t epoch);
  void status_tick(std::uint32_t epoch);

  void handle_object(const wire::Message& message);
  // Device twin (node_devices.cpp).
  void handle_membership(const wire::Message& message);
  bool handle_twin_response(const wire::Message& message);
  void device_object(const wire::Resource& resource, const nlohmann::json& content, bool deleted);
  void twin_tick(std::uint32_t epoch);
  void send_twin_report(const SimDevice& device);
  SimDevice& sim_device(const std::string& id);
  void handle_response(const wire::Message& message);
  void ack(const wire::Message& message, bool twin_style = false);
  ObjectRecord* find(std::string_view kind, std::string_view ns, std::string_view name);
  void record(const nlohmann::json& object, std::string_view kind, std::string_view ns,
              std::string_view name, std::string_view rv, bool deleted);
  void after_pod(const nlohmann::json& pod, const std::string& ns, const std::string& name,
                 bool is_new);
  bool is_current(std::uint32_t epoch) const { return link_ && epoch == epoch_; }

  Worker& worker_;
  std::string name_;
  int index_;
  net::CertAndKey creds_;
  std::shared_ptr<Link> link_;
  std::vector<std::shared_ptr<Link>> abandoned_;  // kept open until shutdown
  std::string replica_;               // replica of the current connection
  std::string last_delivery_replica_;  // replica that delivered the last object message
  std::uint64_t deliveries_this_connection_ = 0;
  std::uint32_t epoch_ = 0;
  bool connected_ = false;
  bool stopped_ = false;
  bool registered_ = false;
  bool ever_connected_ = false;
  int failures_ = 0;  // consecutive, for the backoff
  std::uint8_t renewal_failures_ = 0;
  std::uint16_t cert_generation_ = 0;  // bumped per renewal: older rotation timers are stale  // consecutive, for the rotation retry backoff
  std::uint32_t connects_ = 0;
  std::chrono::steady_clock::time_point dial_started_;
  std::chrono::steady_clock::time_point last_status_;
  // The node's Lease as the hub last returned it; empty uid: not known yet.
  std::string lease_uid_;
  std::string lease_rv_;
  bool lease_missing_ = false;
  // As kubelet's lease controller: a failed renewal reads the Lease again and retries at once,
  // up to kLeaseRetries times per round (a conflict after a hand-off is the common case).
  bool lease_write_after_query_ = false;
  int lease_retries_ = 0;
  std::vector<Pending> pending_;
  std::vector<ObjectRecord> objects_;
  std::vector<SimDevice> devices_;
  std::string detail_msg_id_;  // the membership/detail request of this connection
};

}  // namespace edgehub::sim

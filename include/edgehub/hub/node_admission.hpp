#pragma once
// NodeAdmission: which node identities this replica serves, on the API thread. The edge
// listener asks it before a session exists, the certificate service before it signs:
//   1. revoked (hub.revocation.configMap: node names, certificate serials) → 403;
//   2. a Node of that name that is not an edge node (no node-role.kubernetes.io/edge label:
//      a control-plane or worker node) → 403 — an edge certificate must never stand for it;
//   3. no Node of that name → allowed (edgecore registers its Node after connecting);
//   4. the API cannot tell → 503 (fail closed; the edge retries).
// The cluster's other Nodes are known from a list-and-watch of the Nodes *without* the edge
// label (names only; a cluster has at most a few thousand), so no connect and no join costs
// an API request once the first list is in: a reconnecting fleet of new nodes under a
// saturated kube.qps used to wait for a GET per connect, past the handshake timeout, and come
// back for more. Until that first list, a name costs one GET of the Node.
// The deny list is re-read every hub.revocation.interval; after each read, `on_reload`
// runs so the hub can close sessions whose identity was just revoked.

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/reflector.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <edgehub/pki/deny_list.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace edgehub::hub {

struct NodeAdmissionOptions {
  std::string ns;                   // the revocation ConfigMap's namespace (hub.namespace)
  std::string revocation_config_map;  // empty: no deny list
  std::chrono::milliseconds reread_interval{30'000};
  std::string edge_node_label = "node-role.kubernetes.io/edge";
};

class NodeAdmission : public std::enable_shared_from_this<NodeAdmission>,
                      private kube::ReflectorHandler {
 public:
  static std::shared_ptr<NodeAdmission> make(std::shared_ptr<kube::Client> client,
                                             metrics::Registry& metrics,
                                             NodeAdmissionOptions options);
  ~NodeAdmission() override;

  // API thread. `on_reload` runs on it after every read of the deny list.
  void start(std::function<void()> on_reload);
  void stop();

  // Any thread; `done` runs on the API thread. check_connect also remembers the serial a
  // node connected with, for revoked().
  void check(const std::string& node, const std::string& serial, pki::IdentityDone done);
  void check_connect(const std::string& node, const std::string& serial, pki::IdentityDone done);

  // API thread: is the identity `node` connected with (name or remembered serial) revoked?
  bool revoked(const std::string& node) const;
  // API thread: forget serials of nodes for which `connected` is false.
  void retain(const std::function<bool(const std::string&)>& connected);
  const pki::DenyList& deny_list() const { return deny_; }
  // Reads the deny list now (tests; start() reads it too), then calls `done` (API thread).
  void reload(std::function<void()> done = nullptr);

 private:
  NodeAdmission(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
                NodeAdmissionOptions options);
  boost::asio::awaitable<void> run_check(std::string node, std::string serial, bool connect,
                                         pki::IdentityDone done);
  boost::asio::awaitable<pki::IdentityVerdict> node_verdict(const std::string& node);
  boost::asio::awaitable<void> read_deny_list(std::function<void()> done);
  void schedule();
  void count(const pki::IdentityVerdict& verdict);

  // ReflectorHandler: the names of the Nodes that are not edge nodes.
  void on_added(const kube::Object& obj) override { note(obj); }
  void on_modified(const kube::Object& obj) override { note(obj); }
  void on_deleted(const kube::Object& obj) override { other_nodes_.erase(obj.meta.name); }
  void on_resynced(const std::vector<kube::Object>& current) override;
  void note(const kube::Object& node);

  std::shared_ptr<kube::Client> client_;
  NodeAdmissionOptions options_;
  pki::DenyList deny_;
  std::shared_ptr<kube::Reflector> reflector_;
  std::unordered_set<std::string> other_nodes_;  // Nodes without the edge label
  bool listed_ = false;                          // other_nodes_ holds a complete list
  std::unordered_map<std::string, std::string> connected_serials_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  std::function<void()> on_reload_;
  bool stopped_ = false;
  metrics::Family<metrics::Counter>& checks_;
  metrics::Counter& reload_failures_;
};

}  // namespace edgehub::hub

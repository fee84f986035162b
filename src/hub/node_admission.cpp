#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <edgehub/hub/node_admission.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::hub {

namespace asio = boost::asio;

namespace {

// Named options: no aggregate temporaries inside co_await (the GCC 12 pitfall).
const kube::RequestOptions kAdmissionRead{.priority = kube::Priority::NodeSync};

// The ConfigMap's data object; a discarded json when the text is not a ConfigMap.
nlohmann::json config_map_data(const kube::Object& object) {
  const auto doc = object.json();
  if (!doc.is_object()) return nlohmann::json(nlohmann::json::value_t::discarded);
  const auto data = doc.find("data");
  if (data == doc.end()) return nlohmann::json::object();  // an empty ConfigMap
  return data->is_object() ? *data : nlohmann::json(nlohmann::json::value_t::discarded);
}

bool has_label(const kube::Object& node, const std::string& label) {
  const auto doc = node.json();
  if (!doc.is_object()) return false;
  const auto meta = doc.find("metadata");
  if (meta == doc.end() || !meta->is_object()) return false;
  const auto labels = meta->find("labels");
  return labels != meta->end() && labels->is_object() && labels->contains(label);
}

pki::IdentityRefusal not_edge_node(const std::string& node, const std::string& label) {
  return pki::IdentityRefusal{
      403, "not_edge_node",
      "Node " + node + " exists and is not an edge node (no " + label +
          " label): an edge certificate may not stand for it"};
}

}  // namespace

std::shared_ptr<NodeAdmission> NodeAdmission::make(std::shared_ptr<kube::Client> client,
                                                   metrics::Registry& metrics,
                                                   NodeAdmissionOptions options) {
  return std::shared_ptr<NodeAdmission>(
      new NodeAdmission(std::move(client), metrics, std::move(options)));
}

NodeAdmission::NodeAdmission(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
                             NodeAdmissionOptions options)
    : client_(std::move(client)), options_(std::move(options)),
      checks_(metrics.counter("edgehub_node_admission_total",
                              "Identity checks of connecting and certificate-requesting edges, "
                              "by result (allowed, revoked, not_edge_node, unverifiable).",
                              {"result"})),
      reload_failures_(metrics.counter("edgehub_revocation_reload_failures_total",
                                       "Failed reads of the revocation ConfigMap (the last list "
                                       "read stays in force).")
                           .with({})) {
  metrics.gauge_callback("edgehub_revoked_entries",
                         "Node names and certificate serials in the deny list.",
                         [this] { return static_cast<double>(deny_.size()); });
}

// stop() ends the reflector on the API thread; the destructor posts nothing, because the last
// reference may go with a handler destroyed when an io_context shuts down, after the API
// io_context is gone.
NodeAdmission::~NodeAdmission() = default;

void NodeAdmission::start(std::function<void()> on_reload) {
  on_reload_ = std::move(on_reload);
  kube::ReflectorOptions o;
  o.resource = kube::resources::nodes();
  o.label_selector = "!" + options_.edge_node_label;
  o.initial_list_resource_version = "0";
  o.priority = kube::Priority::Bulk;
  reflector_ = kube::Reflector::make(client_, std::move(o), *this);
  reflector_->start();
  if (options_.revocation_config_map.empty()) return;
  timer_ = std::make_unique<asio::steady_timer>(client_->executor());
  reload();
}

void NodeAdmission::stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
  if (reflector_) reflector_->stop();
}

void NodeAdmission::on_resynced(const std::vector<kube::Object>& current) {
  other_nodes_.clear();
  for (const auto& o : current) note(o);
  listed_ = true;
}

// A watch with a label selector may deliver a Node whose label was just added (the API
// server sends DELETED for it; a simpler server may send the change): the label decides.
void NodeAdmission::note(const kube::Object& node) {
  if (has_label(node, options_.edge_node_label)) {
    other_nodes_.erase(node.meta.name);
  } else {
    other_nodes_.insert(node.meta.name);
  }
}

void NodeAdmission::check(const std::string& node, const std::string& serial,
                          pki::IdentityDone done) {
  asio::co_spawn(client_->executor(), run_check(node, serial, false, std::move(done)),
                 asio::detached);
}

void NodeAdmission::check_connect(const std::string& node, const std::string& serial,
                                  pki::IdentityDone done) {
  asio::co_spawn(client_->executor(), run_check(node, serial, true, std::move(done)),
                 asio::detached);
}

asio::awaitable<void> NodeAdmission::run_check(std::string node, std::string serial,
                                               bool connect, pki::IdentityDone done) {
  auto self = shared_from_this();
  pki::IdentityVerdict verdict;
  if (auto reason = deny_.reason(node, serial); !reason.empty()) {
    verdict = pki::IdentityRefusal{403, "revoked", reason + " (hub.revocation.configMap)"};
  } else {
    try {
      verdict = co_await node_verdict(node);
    } catch (const std::exception& e) {
      verdict = pki::IdentityRefusal{503, "unverifiable",
                                     "cannot check Node " + node + ": " + e.what()};
    }
  }
  count(verdict);
  if (!verdict && connect) connected_serials_[node] = serial;
  done(std::move(verdict));
}

asio::awaitable<pki::IdentityVerdict> NodeAdmission::node_verdict(const std::string& node) {
  if (listed_) {
    if (other_nodes_.contains(node)) co_return not_edge_node(node, options_.edge_node_label);
    co_return std::nullopt;  // an edge Node, or one that does not exist yet
  }
  auto found = co_await client_->get(kube::resources::nodes(), "", node, kAdmissionRead);
  if (!found) {
    // edgecore creates its Node after it connected: a name no Node has yet is the node's own.
    if (found.error().is(kube::ErrorKind::NotFound)) co_return std::nullopt;
    co_return pki::IdentityRefusal{503, "unverifiable",
                                   "cannot check Node " + node + ": " + found.error().describe()};
  }
  if (has_label(*found, options_.edge_node_label)) co_return std::nullopt;
  co_return not_edge_node(node, options_.edge_node_label);
}

void NodeAdmission::count(const pki::IdentityVerdict& verdict) {
  checks_.with({verdict ? verdict->label : std::string("allowed")}).inc();
}

bool NodeAdmission::revoked(const std::string& node) const {
  if (deny_.denies_node(node)) return true;
  const auto it = connected_serials_.find(node);
  return it != connected_serials_.end() && deny_.denies_serial(it->second);
}

void NodeAdmission::retain(const std::function<bool(const std::string&)>& connected) {
  std::erase_if(connected_serials_, [&](const auto& entry) { return !connected(entry.first); });
}

void NodeAdmission::reload(std::function<void()> done) {
  if (options_.revocation_config_map.empty()) {
    if (done) done();
    return;
  }
  asio::co_spawn(client_->executor(), read_deny_list(std::move(done)), asio::detached);
}

asio::awaitable<void> NodeAdmission::read_deny_list(std::function<void()> done) {
  auto self = shared_from_this();
  const auto& name = options_.revocation_config_map;
  auto found = co_await client_->get(kube::resources::configmaps(), options_.ns, name,
                                     kAdmissionRead);
  if (found) {
    const auto data = config_map_data(*found);
    if (data.is_discarded()) {
      reload_failures_.inc();
      spdlog::warn("revocation: ConfigMap {}/{} has no readable data; keeping the last list",
                   options_.ns, name);
    } else {
      std::size_t skipped = 0;
      auto entries = pki::DenyList::parse(data, &skipped);
      if (skipped > 0) {
        spdlog::warn("revocation: ConfigMap {}/{}: {} entries are neither node names nor hex "
                     "serials; skipped", options_.ns, name, skipped);
      }
      deny_.replace(std::move(entries));
    }
  } else if (found.error().is(kube::ErrorKind::NotFound)) {
    deny_.replace({});
  } else {
    reload_failures_.inc();
    spdlog::warn("revocation: cannot read ConfigMap {}/{}: {}; keeping the last list",
                 options_.ns, name, found.error().describe());
  }
  if (stopped_) co_return;
  if (on_reload_) on_reload_();
  if (done) done();
  schedule();
}

void NodeAdmission::schedule() {
  if (!timer_ || stopped_) return;
  timer_->expires_after(options_.reread_interval);
  timer_->async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->stopped_) return;
    asio::co_spawn(self->client_->executor(), self->read_deny_list(nullptr), asio::detached);
  });
}

}  // namespace edgehub::hub

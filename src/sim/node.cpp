#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>

#include "link.hpp"
#include "node.hpp"
#include "worker.hpp"

namespace edgehub::sim {
namespace {

using Clock = std::chrono::steady_clock;
namespace op = wire::operation;

constexpr std::string_view kLeaseNamespace = "kube-node-lease";
constexpr int kLeaseRetries = 5;  // kubelet's nodelease maxUpdateRetries
constexpr std::string_view kStampAnnotation = "edgehub.io/stamp";

std::string rfc3339_now(bool micro = false) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (micro) {
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
        1'000'000;
    n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof(buf) - n, ".%06lld",
                                                static_cast<long long>(us)));
  }
  buf[n++] = 'Z';
  return std::string(buf, n);
}

// Kind for a wire resource type when the content has none (the edge's Node and Lease objects,
// sync-loop resends, deletes with only metadata).
std::string kind_of(std::string_view type) {
  static const std::pair<std::string_view, std::string_view> kKinds[] = {
      {"pod", "Pod"},           {"configmap", "ConfigMap"}, {"secret", "Secret"},
      {"node", "Node"},         {"device", "Device"},       {"devicemodel", "DeviceModel"},
      {"lease", "Lease"},       {"service", "Service"},     {"endpoints", "Endpoints"},
      {"persistentvolume", "PersistentVolume"}};
  for (const auto& [t, k] : kKinds) {
    if (t == type) return std::string(k);
  }
  return std::string(type);
}

std::string str(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Unix time in the stamp annotation, in ns, µs or ms, told apart by magnitude; → µs.
std::int64_t stamp_micros(const std::string& text) {
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || v <= 0) return -1;
  if (v >= 100'000'000'000'000'000LL) return v / 1000;  // ns
  if (v >= 100'000'000'000'000LL) return v;              // µs
  return v * 1000;                                       // ms
}

std::int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Node::Node(Worker& worker, std::string name, int index)
    : worker_(worker), name_(std::move(name)), index_(index) {}

void Node::begin(std::chrono::milliseconds delay) {
  worker_.scheduler.after(delay, [this] { worker_.want_dial(this); });
}

void Node::dial_now() {
  if (stopped_) return worker_.dial_done();
  ++epoch_;
  dial_started_ = Clock::now();
  std::int64_t zero = 0;
  worker_.stats.first_dial_ns.compare_exchange_strong(
      zero, dial_started_.time_since_epoch().count(), std::memory_order_relaxed);
  link_ = make_link(worker_, *this, epoch_);
  const auto epoch = epoch_;
  worker_.scheduler.after(worker_.options.handshake_timeout, [this, epoch] {
    if (is_current(epoch) && !connected_) {
      on_closed(epoch, boost::asio::error::timed_out, "handshake", false);
    }
  });
  auto link = link_;  // start() may fail at once and drop link_
  link->start();
}

void Node::shutdown() {
  stopped_ = true;
  for (auto& old : abandoned_) old->close();
  abandoned_.clear();
  if (link_) {
    link_->close();
    link_.reset();
  }
  if (connected_) {
    connected_ = false;
    worker_.stats.connected.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Node::on_connected(std::uint32_t epoch, std::string replica) {
  if (!is_current(epoch)) return;
  worker_.dial_done();
  connected_ = true;
  replica_ = std::move(replica);
  deliveries_this_connection_ = 0;
  failures_ = 0;
  ++connects_;
  auto& stats = worker_.stats;
  stats.connected.fetch_add(1, std::memory_order_relaxed);
  stats.connects.fetch_add(1, std::memory_order_relaxed);
  if (ever_connected_) stats.reconnects.fetch_add(1, std::memory_order_relaxed);
  ever_connected_ = true;
  stats.last_connect_ns.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  stats.connect_time.record(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - dial_started_).count());

  // What edgecore sends once connected (KUBEEDGE-WIRE §3.6, capture edged/register.jsonl).
  send_keepalive();
  send_membership_detail();
  send_lease_query();
  send_node_insert();

  const auto& o = worker_.options;
  worker_.scheduler.after(o.keepalive, [this, epoch] { keepalive_tick(epoch); });
  worker_.scheduler.after(o.lease_renew, [this, epoch] { lease_tick(epoch); });
  worker_.scheduler.after(o.status_check, [this, epoch] { status_tick(epoch); });
  if (o.twin_every.count() > 0) {
    // Spread over the period, as real devices report on their own clocks.
    const auto first = std::chrono::milliseconds(static_cast<std::int64_t>(
        static_cast<double>(o.twin_every.count()) * worker_.uniform(0.0, 1.0)));
    worker_.scheduler.after(first, [this, epoch] { twin_tick(epoch); });
  }
  if (o.flap_every.count() > 0) {
    const auto after = std::chrono::milliseconds(
        static_cast<std::int64_t>(static_cast<double>(o.flap_every.count()) *
                                  worker_.uniform(0.5, 1.5)));
    worker_.scheduler.after(after, [this, epoch] {
      if (is_current(epoch)) on_closed(epoch, boost::asio::error::connection_aborted, "flap", true);
    });
  }
}

void Node::on_closed(std::uint32_t epoch, const boost::system::error_code& ec,
                     std::string_view stage, bool was_connected) {
  if (!is_current(epoch)) return;
  auto& stats = worker_.stats;
  if (connected_) {
    connected_ = false;
    stats.connected.fetch_sub(1, std::memory_order_relaxed);
    stats.disconnects.fetch_add(1, std::memory_order_relaxed);
  } else {
    worker_.dial_done();
    stats.connect_failures.fetch_add(1, std::memory_order_relaxed);
  }
  (void)was_connected;
  link_->close();
  link_.reset();
  replica_.clear();
  pending_.clear();
  pending_.shrink_to_fit();
  registered_ = false;
  if (!worker_.stopping) {
    // Logged at debug: with thousands of nodes a hub restart would flood the log otherwise.
    spdlog::debug("node {}: connection to {}:{} ended at {}: {}", name_, worker_.options.host,
                  worker_.options.port, stage, ec.message());
  }
  schedule_reconnect();
}

bool Node::abandon() {
  if (!link_ || !connected_ || stopped_) return false;
  connected_ = false;
  worker_.stats.connected.fetch_sub(1, std::memory_order_relaxed);
  worker_.stats.disconnects.fetch_add(1, std::memory_order_relaxed);
  link_->abandon();
  abandoned_.push_back(std::move(link_));
  pending_.clear();
  registered_ = false;
  spdlog::info("node {}: connection to replica '{}' abandoned (left open, unread); dialing again",
               name_, replica_);
  replica_.clear();
  failures_ = 0;
  begin(std::chrono::milliseconds(0));
  return true;
}

void Node::schedule_reconnect() {
  if (stopped_ || worker_.stopping) return;
  const auto& o = worker_.options;
  double delay = static_cast<double>(o.reconnect_delay.count());
  for (int i = 0; i < failures_ && delay < static_cast<double>(o.reconnect_max.count()); ++i) {
    delay *= 2;
  }
  delay = std::min(delay, static_cast<double>(o.reconnect_max.count()));
  delay *= worker_.uniform(0.8, 1.2);  // jitter: a hub restart must not get a synchronized herd
  ++failures_;
  begin(std::chrono::milliseconds(static_cast<std::int64_t>(delay)));
}

// --- certificate rotation (KUBEEDGE-WIRE §5.5) ---------------------------------------------

void Node::schedule_rotation() {
  if (worker_.cert_service == nullptr || !creds_.cert) return;
  int days = 0, secs = 0;
  ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(creds_.cert.get()),
                 X509_get0_notAfter(creds_.cert.get()));
  const double life = days * 86400.0 + secs;
  int since_days = 0, since_secs = 0;  // notBefore - now (≤ 0 once valid)
  ASN1_TIME_diff(&since_days, &since_secs, nullptr, X509_get0_notBefore(creds_.cert.get()));
  const double fraction =
      worker_.options.rotate_at > 0 ? worker_.options.rotate_at : worker_.uniform(0.7, 0.9);
  const double delay_s = std::max(0.0, since_days * 86400.0 + since_secs + fraction * life);
  worker_.scheduler.after(std::chrono::milliseconds(static_cast<std::int64_t>(delay_s * 1000)),
                          [this, generation = cert_generation_] {
                            if (generation == cert_generation_) rotate();  // else renewed since
                          });
}

void Node::rotate() {
  if (stopped_ || worker_.stopping) return;
  // The certificate thread gets its own references; this node may renew or stop meanwhile.
  auto current = std::make_shared<net::CertAndKey>();
  X509_up_ref(creds_.cert.get());
  current->cert.reset(creds_.cert.get());
  EVP_PKEY_up_ref(creds_.key.get());
  current->key.reset(creds_.key.get());
  boost::asio::post(*worker_.cert_service->pool, [this, current, service = worker_.cert_service,
                                                  &ioc = worker_.ioc, name = name_,
                                                  unique = worker_.options.unique_keys] {
    try {
      // edgecore makes a new key for each renewal; the shared-key fleet keeps its one key.
      net::PkeyPtr key;
      if (unique) {
        key = net::generate_p256_key();
      } else {
        EVP_PKEY_up_ref(current->key.get());
        key.reset(current->key.get());
      }
      auto cert = request_node_cert(service->address, service->tls, name, key.get(), "",
                                    current.get());
      auto renewed = std::make_shared<net::CertAndKey>(net::CertAndKey{std::move(cert), std::move(key)});
      boost::asio::post(ioc, [this, renewed] { this->renewed(std::move(*renewed)); });
    } catch (const std::exception& e) {
      boost::asio::post(ioc, [this, reason = std::string(e.what())] { renewal_failed(reason); });
    }
  });
}

void Node::renewed(net::CertAndKey credentials) {
  if (stopped_ || worker_.stopping) return;
  creds_ = std::move(credentials);
  ++cert_generation_;
  renewal_failures_ = 0;
  worker_.stats.rotations.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("node {}: certificate renewed", name_);
  schedule_rotation();
  if (!link_) return;  // between attempts: the next dial uses the new certificate
  // As edgecore: reconnect at once with the new certificate.
  if (connected_) {
    connected_ = false;
    worker_.stats.connected.fetch_sub(1, std::memory_order_relaxed);
    worker_.stats.disconnects.fetch_add(1, std::memory_order_relaxed);
  } else {
    worker_.dial_done();
  }
  link_->close();
  link_.reset();
  pending_.clear();
  pending_.shrink_to_fit();
  registered_ = false;
  failures_ = 0;
  begin(std::chrono::milliseconds(0));
}

void Node::renewal_failed(const std::string& reason) {
  if (stopped_ || worker_.stopping) return;
  worker_.stats.rotation_failures.fetch_add(1, std::memory_order_relaxed);
  // edgecore: 2 s doubling for 5 steps, then every 32 s.
  const auto delay = std::chrono::seconds(renewal_failures_ < 5 ? 2 << renewal_failures_ : 32);
  if (renewal_failures_ < 5) ++renewal_failures_;
  spdlog::warn("node {}: certificate renewal failed: {}; retrying in {}s", name_, reason,
               delay.count());
  worker_.scheduler.after(delay, [this, generation = cert_generation_] {
    if (generation == cert_generation_) rotate();
  });
}

// --- sending ----------------------------------------------------------------------------------

wire::Message Node::make(std::string_view source, std::string_view group,
                         std::string_view operation, std::string resource) const {
  wire::Message m;
  m.header.msg_id = wire::new_message_id();
  m.header.timestamp = wire::now_millis();
  m.route.source = std::string(source);
  m.route.group = std::string(group);
  m.route.operation = std::string(operation);
  m.route.resource = std::move(resource);
  return m;
}

void Node::send(const wire::Message& message) {
  if (!link_ || !connected_) return;
  worker_.stats.msgs_out.fetch_add(1, std::memory_order_relaxed);
  link_->send(wire::encode(message));
}

void Node::send_request(wire::Message message, Request kind) {
  pending_.push_back(Pending{message.header.msg_id, Clock::now(), kind});
  send(message);
}

void Node::send_keepalive() {
  auto m = make("websocket", wire::group::kResource, op::kKeepalive, "node");
  m.set_content_string("ping");
  send(m);
}

void Node::send_membership_detail() {
  auto m = make("twin", wire::group::kResource, op::kGet, "membership/detail");
  detail_msg_id_ = m.header.msg_id;
  const nlohmann::ordered_json event = {{"event_type", "group_membership_event"},
                                        {"event_id", wire::new_message_id()},
                                        {"group_id", name_},
                                        {"operation", "detail"},
                                        {"timestamp", m.header.timestamp}};
  m.set_content_string(event.dump());
  send(m);
}

void Node::send_lease_query() {
  auto m = make("edged", wire::group::kMeta, op::kQuery,
                wire::format_resource(kLeaseNamespace, "lease", name_));
  send_request(std::move(m), Request::lease_query);
}

void Node::send_lease_write(bool insert) {
  auto m = make("edged", wire::group::kMeta, insert ? op::kInsert : op::kUpdate,
                wire::format_resource(kLeaseNamespace, "lease", name_));
  nlohmann::ordered_json meta = {{"name", name_}, {"namespace", kLeaseNamespace}};
  if (!insert) {
    meta["uid"] = lease_uid_;
    meta["resourceVersion"] = lease_rv_;
  }
  const nlohmann::ordered_json lease = {
      {"metadata", meta},
      {"spec",
       {{"holderIdentity", name_}, {"leaseDurationSeconds", 40}, {"renewTime", rfc3339_now(true)}}}};
  m.set_content(lease);
  send_request(std::move(m), insert ? Request::lease_insert : Request::lease_update);
}

void Node::send_node_insert() {
  auto m = make("edged", wire::group::kMeta, op::kInsert, wire::format_resource("", "node", name_));
  const std::string now = rfc3339_now();
  const nlohmann::ordered_json node = {
      {"metadata",
       {{"name", name_},
        {"creationTimestamp", nullptr},
        {"labels",
         {{"kubernetes.io/arch", "amd64"},
          {"kubernetes.io/hostname", name_},
          {"kubernetes.io/os", "linux"},
          {"node-role.kubernetes.io/agent", ""},
          {"node-role.kubernetes.io/edge", ""}}}}},
      {"spec", nlohmann::json::object()},
      {"status",
       {{"capacity", {{"cpu", "2"}, {"memory", "4Gi"}, {"pods", "110"}}},
        {"allocatable", {{"cpu", "2"}, {"memory", "4Gi"}, {"pods", "110"}}},
        {"conditions",
         {{{"type", "Ready"},
           {"status", "True"},
           {"lastHeartbeatTime", now},
           {"lastTransitionTime", now},
           {"reason", "KubeletReady"},
           {"message", "kubelet is posting ready status"}}}},
        {"addresses", {{{"type", "Hostname"}, {"address", name_}}}},
        {"nodeInfo",
         {{"kubeletVersion", "v1.32.10-kubeedge-edgehub-sim"},
          {"operatingSystem", "linux"},
          {"architecture", "amd64"}}}}}};
  m.set_content(node);
  send_request(std::move(m), Request::node_insert);
}

void Node::send_node_status() {
  auto m =
      make("edged", wire::group::kMeta, op::kPatch, wire::format_resource("", "nodepatch", name_));
  const std::string now = rfc3339_now();
  const nlohmann::ordered_json patch = {
      {"status",
       {{"$setElementOrder/conditions", {{{"type", "Ready"}}}},
        {"conditions",
         {{{"type", "Ready"},
           {"status", "True"},
           {"lastHeartbeatTime", now},
           {"lastTransitionTime", now},
           {"reason", "KubeletReady"},
           {"message", "kubelet is posting ready status"}}}}}}};
  m.set_content_string(patch.dump());  // a JSON string holding the patch (§3.3)
  last_status_ = Clock::now();
  send_request(std::move(m), Request::node_patch);
}

void Node::send_pod_status(const std::string& ns, const std::string& pod, const std::string& uid) {
  auto m = make("edged", wire::group::kMeta, op::kPatch, wire::format_resource(ns, "podpatch", pod));
  const std::string now = rfc3339_now();
  const nlohmann::ordered_json patch = {
      {"metadata", {{"uid", uid}}},
      {"status",
       {{"phase", "Running"},
        {"conditions",
         {{{"type", "Ready"}, {"status", "True"}, {"lastTransitionTime", now}}}},
        {"startTime", now}}}};
  m.set_content_string(patch.dump());
  send_request(std::move(m), Request::pod_patch);
}

void Node::keepalive_tick(std::uint32_t epoch) {
  if (!is_current(epoch) || !connected_) return;
  send_keepalive();
  worker_.scheduler.after(worker_.options.keepalive, [this, epoch] { keepalive_tick(epoch); });
}

void Node::lease_tick(std::uint32_t epoch) {
  if (!is_current(epoch) || !connected_) return;
  lease_retries_ = 0;
  lease_write_after_query_ = false;
  if (!lease_uid_.empty()) {
    send_lease_write(false);
  } else if (lease_missing_) {
    send_lease_write(true);
  } else {
    send_lease_query();
  }
  worker_.scheduler.after(worker_.options.lease_renew, [this, epoch] { lease_tick(epoch); });
}

void Node::status_tick(std::uint32_t epoch) {
  if (!is_current(epoch) || !connected_) return;
  // The simulated status never changes, so only the report interval makes a patch.
  if (registered_ && Clock::now() - last_status_ >= worker_.options.status_report) {
    send_node_status();
  }
  const auto now = Clock::now();
  const auto before = pending_.size();
  std::erase_if(pending_, [&](const Pending& p) {
    return now - p.sent > worker_.options.request_timeout;
  });
  if (const auto expired = before - pending_.size(); expired > 0) {
    worker_.stats.request_timeouts.fetch_add(expired, std::memory_order_relaxed);
  }
  worker_.scheduler.after(worker_.options.status_check, [this, epoch] { status_tick(epoch); });
}

// --- receiving --------------------------------------------------------------------------------

bool Node::on_message(std::uint32_t epoch, std::string_view payload) {
  if (!is_current(epoch)) return false;
  auto& stats = worker_.stats;
  stats.msgs_in.fetch_add(1, std::memory_order_relaxed);
  auto decoded = wire::decode(payload);
  if (!decoded) {
    // Edgecore closes the connection on a decode error (KUBEEDGE-WIRE §1.4); so do we.
    stats.decode_errors.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("node {}: undecodable message from the hub ({}), reconnecting", name_,
                 decoded.error().message);
    on_closed(epoch, boost::asio::error::invalid_argument, "decode", true);
    return false;
  }
  const wire::Message& message = *decoded;
  const auto& operation = message.route.operation;
  if (operation == op::kResponse) {
    if (message.route.group != wire::group::kTwin || !handle_twin_response(message)) {
      handle_response(message);
    }
  } else if (operation == op::kInsert || operation == op::kUpdate || operation == op::kDelete) {
    if (message.route.group == wire::group::kTwin) {
      // membership / twin: devicetwin never ACKs them (§4.1).
      if (message.route.resource == "membership") handle_membership(message);
    } else {
      handle_object(message);
    }
  } else if (operation == "ping" || operation == "pong" || operation == "config") {
    // Viaduct's control vocabulary: answered by the transport with "ack" (§1.4).
    wire::Message reply = wire::make_ack(message, wire::now_millis());
    reply.set_content_string("ack");
    send(reply);
  }
  if (worker_.options.slow_reader.count() > 0 && is_current(epoch)) {
    worker_.scheduler.after(worker_.options.slow_reader, [this, epoch] {
      if (is_current(epoch)) link_->resume_read();
    });
    return false;
  }
  return is_current(epoch);
}

void Node::ack(const wire::Message& message, bool twin_style) {
  if (worker_.options.drop_acks > 0 && worker_.uniform(0.0, 1.0) < worker_.options.drop_acks) {
    worker_.stats.acks_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  wire::Message reply = wire::make_ack(message, wire::now_millis());
  if (twin_style) {  // device/devicemodel insert+delete ACKs (KUBEEDGE-WIRE §10.2)
    reply.route.source = "meta";
    reply.route.group = std::string(wire::group::kTwin);
  }
  worker_.stats.acks_sent.fetch_add(1, std::memory_order_relaxed);
  send(reply);
}

ObjectRecord* Node::find(std::string_view kind, std::string_view ns, std::string_view name) {
  for (auto& o : objects_) {
    if (o.kind == kind && o.ns == ns && o.name == name) return &o;
  }
  return nullptr;
}

void Node::record(const nlohmann::json& object, std::string_view kind, std::string_view ns,
                  std::string_view name, std::string_view rv, bool deleted) {
  ObjectRecord* rec = find(kind, ns, name);
  if (rec == nullptr) {
    objects_.push_back(ObjectRecord{std::string(kind), std::string(ns), std::string(name), {}, {},
                                    false});
    rec = &objects_.back();
  }
  const auto meta = object.is_object() && object.contains("metadata") ? object["metadata"]
                                                                       : nlohmann::json();
  if (auto uid = str(meta, "uid"); !uid.empty()) rec->uid = std::move(uid);
  std::string version(rv);
  if (version.empty()) version = str(meta, "resourceVersion");
  if (!version.empty()) rec->resource_version = std::move(version);
  rec->deleted = deleted;
  rec->replica = replica_;
  last_delivery_replica_ = replica_;
  ++deliveries_this_connection_;
  worker_.stats.objects_received.fetch_add(1, std::memory_order_relaxed);
  // Downstream latency: the benchmark driver stamps the change time on the object.
  if (meta.is_object() && meta.contains("annotations")) {
    const auto stamp = str(meta["annotations"], kStampAnnotation.data());
    if (const auto us = stamp_micros(stamp); us > 0) {
      worker_.stats.downstream.record(std::max<std::int64_t>(0, now_micros() - us));
    }
  }
}

void Node::handle_object(const wire::Message& message) {
  auto resource = wire::parse_resource(message.route.resource);
  if (!resource || resource->form != wire::ResourceForm::object) {
    ack(message);
    return;
  }
  const auto& r = *resource;
  const nlohmann::json content = message.content_json();
  std::string kind = str(content, "kind");
  if (kind.empty()) kind = kind_of(r.type);
  const bool deleted = message.route.operation == op::kDelete;
  const ObjectRecord* before = find(kind, r.ns, r.name);
  const bool is_new = before == nullptr || before->deleted;
  record(content, kind, r.ns, r.name, message.header.resource_version, deleted);
  if (r.type == "node" && r.name == name_ && !deleted) registered_ = true;
  const bool device = r.type == "device" || r.type == "devicemodel";
  ack(message, device && message.route.operation != op::kUpdate);
  if (r.type == "pod" && !deleted) after_pod(content, r.ns, r.name, is_new);
  if (r.type == "device") device_object(r, content, deleted);
}

void Node::after_pod(const nlohmann::json& pod, const std::string& ns, const std::string& name,
                     bool is_new) {
  if (!is_new || !pod.is_object()) return;
  const auto meta = pod.value("metadata", nlohmann::json::object());
  if (meta.contains("deletionTimestamp")) return;
  // What its containers need, as edged fetches it when starting the pod (§3.6).
  std::vector<std::pair<std::string, bool>> refs;  // name, is_secret
  auto add = [&](const std::string& n, bool secret) {
    if (n.empty()) return;
    for (const auto& r : refs) {
      if (r.first == n && r.second == secret) return;
    }
    refs.emplace_back(n, secret);
  };
  const auto spec = pod.value("spec", nlohmann::json::object());
  for (const auto& v : spec.value("volumes", nlohmann::json::array())) {
    if (v.contains("configMap")) add(str(v["configMap"], "name"), false);
    if (v.contains("secret")) add(str(v["secret"], "secretName"), true);
  }
  for (const char* list : {"containers", "initContainers"}) {
    for (const auto& c : spec.value(list, nlohmann::json::array())) {
      for (const auto& e : c.value("env", nlohmann::json::array())) {
        const auto from = e.value("valueFrom", nlohmann::json::object());
        if (from.contains("configMapKeyRef")) add(str(from["configMapKeyRef"], "name"), false);
        if (from.contains("secretKeyRef")) add(str(from["secretKeyRef"], "name"), true);
      }
      for (const auto& e : c.value("envFrom", nlohmann::json::array())) {
        if (e.contains("configMapRef")) add(str(e["configMapRef"], "name"), false);
        if (e.contains("secretRef")) add(str(e["secretRef"], "name"), true);
      }
    }
  }
  for (const auto& [ref, secret] : refs) {
    auto m = make("edged", wire::group::kMeta, op::kQuery,
                  wire::format_resource(ns, secret ? "secret" : "configmap", ref));
    send_request(std::move(m), secret ? Request::secret_query : Request::configmap_query);
  }
  send_pod_status(ns, name, str(meta, "uid"));
}

void Node::handle_response(const wire::Message& message) {
  const auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
    return p.msg_id == message.header.parent_msg_id;
  });
  if (it == pending_.end()) return;  // an answer to nothing we wait for (or timed out)
  const Request kind = it->kind;
  worker_.stats.upstream.record(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - it->sent).count());
  pending_.erase(it);
  if (pending_.empty()) pending_.shrink_to_fit();  // idle nodes hold no request ids

  const nlohmann::json content = message.content_json();
  // ObjectResp {"Object","Err"}, a bare object, or a StatusError map.
  const bool object_resp = content.is_object() && content.contains("Err");
  const nlohmann::json err = object_resp ? content["Err"] : nlohmann::json();
  const nlohmann::json object = object_resp ? content["Object"] : content;
  const bool failed = !err.is_null() || (content.is_object() && content.contains("ErrStatus"));
  const std::string reason =
      !err.is_null() ? str(err.value("ErrStatus", nlohmann::json::object()), "reason")
                     : str(content.value("ErrStatus", nlohmann::json::object()), "reason");
  if (failed && reason != "NotFound" && reason != "AlreadyExists") {
    worker_.stats.request_errors.fetch_add(1, std::memory_order_relaxed);
  }

  switch (kind) {
    case Request::lease_query:
      if (!failed && object.is_object()) {
        lease_uid_ = str(object["metadata"], "uid");
        lease_rv_ = str(object["metadata"], "resourceVersion");
        lease_missing_ = false;
        if (lease_write_after_query_) {
          lease_write_after_query_ = false;
          send_lease_write(false);
        }
      } else if (reason == "NotFound") {
        lease_write_after_query_ = false;
        lease_missing_ = true;
        send_lease_write(true);
      }
      break;
    case Request::lease_insert:
    case Request::lease_update:
      if (!failed && object.is_object()) {
        lease_uid_ = str(object["metadata"], "uid");
        lease_rv_ = str(object["metadata"], "resourceVersion");
        lease_missing_ = false;
      } else {
        // Conflict (the hub renewed the Lease when it handed the session off), gone, or
        // refused: read it again and retry now, as kubelet does (maxUpdateRetries 5).
        lease_uid_.clear();
        lease_missing_ = false;
        if (++lease_retries_ <= kLeaseRetries) {
          lease_write_after_query_ = true;
          send_lease_query();
        }
      }
      break;
    case Request::node_insert:
      if (!failed || reason == "AlreadyExists") {
        if (!failed && object.is_object()) {
          record(object, "Node", "", name_, message.header.resource_version, false);
        }
        registered_ = true;
        send_node_status();  // Ready=True right after registration
      }
      break;
    case Request::configmap_query:
    case Request::secret_query:
      if (!failed && object.is_object()) {
        const auto resource = wire::parse_resource(message.route.resource);
        if (resource) {
          record(object, kind == Request::secret_query ? "Secret" : "ConfigMap", resource->ns,
                 resource->name, message.header.resource_version, false);
        }
      }
      break;
    case Request::node_patch:
    case Request::pod_patch:
    case Request::twin_report:
      return;  // edgecore does not ACK these (§11.2)
  }
  // Edgecore's metamanager ACKs the responses to its queries, inserts and updates (§11.2).
  ack(message);
}

nlohmann::json Node::state_json() const {
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& o : objects_) {
    objects.push_back({{"kind", o.kind},
                       {"namespace", o.ns},
                       {"name", o.name},
                       {"uid", o.uid},
                       {"resourceVersion", o.resource_version},
                       {"deleted", o.deleted},
                       {"replica", o.replica}});
  }
  std::vector<std::string> members;
  for (const auto& d : devices_) {
    if (d.member) members.push_back(d.id);
  }
  std::sort(members.begin(), members.end());
  return {{"name", name_},
          {"connected", connected_},
          {"registered", registered_},
          {"connects", connects_},
          {"replica", replica_},
          {"lastDeliveryReplica", last_delivery_replica_},
          {"deliveriesThisConnection", deliveries_this_connection_},
          {"abandoned", abandoned_.size()},
          {"objects", std::move(objects)},
          {"devices", std::move(members)}};
}

// --- worker dial slots ------------------------------------------------------------------------

void Worker::want_dial(Node* node) {
  if (stopping) return;
  if (dialing_ < options.max_connecting) {
    ++dialing_;
    node->dial_now();
  } else {
    waiting_.push_back(node);
  }
}

void Worker::dial_done() {
  --dialing_;
  while (!waiting_.empty() && dialing_ < options.max_connecting && !stopping) {
    Node* next = waiting_.front();
    waiting_.pop_front();
    ++dialing_;
    next->dial_now();
  }
}

}  // namespace edgehub::sim

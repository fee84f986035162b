#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/hub/membership.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>

namespace edgehub::hub {

namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

// Named options: see the GCC 12 note in upstream.cpp (no aggregate temporaries in co_await).
const kube::RequestOptions kMembership{.priority = kube::Priority::Lease};
const kube::DeleteOptions kLeave{.priority = kube::Priority::Lease};

std::size_t to_size(const std::string& s) {
  std::size_t n = 0;
  std::from_chars(s.data(), s.data() + s.size(), n);
  return n;
}

}  // namespace

std::string micro_time_now() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(micros));
  return buf;
}

std::optional<std::int64_t> parse_rfc3339(std::string_view text) {
  std::tm tm{};
  const std::string s(text);
  const char* end = ::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::size_t rebalance_surplus(std::size_t mine, const std::vector<std::size_t>& live_counts,
                              double tolerance, std::size_t per_round, std::size_t backlog) {
  if (live_counts.size() < 2 || backlog > 0) return 0;
  double total = 0;
  for (auto c : live_counts) total += static_cast<double>(c);
  const double average = total / static_cast<double>(live_counts.size());
  if (static_cast<double>(mine) <= average * (1.0 + tolerance)) return 0;
  const auto floor_at = static_cast<std::size_t>(std::ceil(average));
  if (mine <= floor_at) return 0;
  return std::min(mine - floor_at, per_round);
}

asio::awaitable<kube::Result<std::vector<ReplicaInfo>>> list_replicas(kube::Client& client,
                                                                     std::string ns) {
  kube::ListOptions by_label;
  by_label.label_selector = std::string(kReplicaLabel) + "=true";
  by_label.priority = kube::Priority::Lease;
  auto leases = co_await client.list(kube::resources::leases(), ns, by_label);
  if (!leases) co_return leases.error();
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::vector<ReplicaInfo> out;
  for (const auto& item : leases->items) {
    const auto doc = item.json();
    if (!doc.is_object()) continue;
    ReplicaInfo r;
    r.name = item.meta.name;
    const auto meta = doc.value("metadata", json::object());
    const auto annotations = meta.value("annotations", json::object());
    r.address = annotations.value("edgehub.io/address", "");
    r.connections = to_size(annotations.value("edgehub.io/connections", "0"));
    r.ready = annotations.value("edgehub.io/ready", "") == "true";
    const auto spec = doc.value("spec", json::object());
    r.renew_time = spec.value("renewTime", "");
    r.lease_duration = std::chrono::seconds(spec.value("leaseDurationSeconds", 30));
    const auto renewed = parse_rfc3339(r.renew_time);
    r.age = std::chrono::seconds(renewed ? std::max<std::int64_t>(0, now - *renewed) : 1'000'000);
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  co_return out;
}

Membership::Membership(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
                       MembershipOptions options, Connections connections, Ready ready,
                       OnFleet on_fleet)
    : client_(std::move(client)),
      options_(std::move(options)),
      connections_(std::move(connections)),
      ready_(std::move(ready)),
      on_fleet_(std::move(on_fleet)),
      renewals_(metrics.counter("edgehub_membership_renewals_total",
                                "Renewals of this replica's membership Lease, by result.",
                                {"result"})),
      fleet_replicas_(metrics.gauge("edgehub_fleet_replicas",
                                    "Live replicas seen in membership Leases (this one included).")
                          .with({})),
      fleet_connections_(metrics.gauge("edgehub_fleet_connections",
                                       "Edge connections of all live replicas, from their Leases.")
                             .with({})) {}

Membership::~Membership() { *alive_ = false; }

void Membership::start() { schedule(std::chrono::milliseconds(0)); }

void Membership::stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
}

void Membership::schedule(std::chrono::milliseconds after) {
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(client_->executor());
  timer_->expires_after(after);
  timer_->async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_) return;
    asio::co_spawn(client_->executor(), renew(), [this, alive](std::exception_ptr) {
      if (*alive && !stopped_) schedule(options_.renew_interval);
    });
  });
}

std::string Membership::lease_json() const {
  json meta = {{"name", options_.replica},
               {"namespace", options_.ns},
               {"labels", {{std::string(kReplicaLabel), "true"}}},
               {"annotations",
                {{"edgehub.io/address", options_.address},
                 {"edgehub.io/connections", std::to_string(connections_())},
                 {"edgehub.io/ready", ready_() ? "true" : "false"}}}};
  if (!resource_version_.empty()) meta["resourceVersion"] = resource_version_;
  json doc = {{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", std::move(meta)},
              {"spec",
               {{"holderIdentity", options_.replica},
                {"leaseDurationSeconds", options_.lease_duration.count()},
                {"renewTime", micro_time_now()}}}};
  return doc.dump();
}

asio::awaitable<void> Membership::renew() {
  auto alive = alive_;
  renewing_ = true;
  co_await renew_once();
  if (*alive) renewing_ = false;
}

asio::awaitable<void> Membership::renew_once() {
  auto alive = alive_;
  kube::Result<kube::Object> written = kube::Error{};
  if (!resource_version_.empty()) {
    written = co_await client_->update(kube::resources::leases(), options_.ns, options_.replica,
                                       lease_json(), kMembership);
    if (!*alive) co_return;
  }
  if (resource_version_.empty() || !written) {
    // First renewal, or the Lease changed/vanished: read it and write on top of it.
    auto current = co_await client_->get(kube::resources::leases(), options_.ns, options_.replica,
                                         kMembership);
    if (!*alive) co_return;
    if (current) {
      resource_version_ = current->meta.resource_version;
      written = co_await client_->update(kube::resources::leases(), options_.ns,
                                         options_.replica, lease_json(), kMembership);
    } else if (current.error().is(kube::ErrorKind::NotFound)) {
      resource_version_.clear();
      written = co_await client_->create(kube::resources::leases(), options_.ns, lease_json(),
                                         kMembership);
    } else {
      written = current.error();
    }
    if (!*alive) co_return;
  }
  if (stopped_) co_return;  // leaving: leave() deletes the Lease after this
  if (!written) {
    renewals_.with({"error"}).inc();
    resource_version_.clear();
    spdlog::warn("replica {}: cannot renew its membership Lease {}/{}: {}", options_.replica,
                 options_.ns, options_.replica, written.error().describe());
    co_return;
  }
  renewals_.with({"ok"}).inc();
  resource_version_ = written->meta.resource_version;
  auto fleet = co_await list_replicas(*client_, options_.ns);
  if (!*alive || !fleet) co_return;
  std::vector<ReplicaInfo> live;
  std::size_t total = 0;
  for (auto& r : *fleet) {
    if (!r.live()) continue;
    total += r.connections;
    live.push_back(std::move(r));
  }
  fleet_replicas_.set(static_cast<double>(live.size()));
  fleet_connections_.set(static_cast<double>(total));
  if (on_fleet_) on_fleet_(live);
}

asio::awaitable<void> Membership::leave() {
  stop();
  auto alive = alive_;
  for (int i = 0; renewing_ && i < 500; ++i) {  // a renewal in flight must not re-create it
    asio::steady_timer wait(client_->executor());
    wait.expires_after(std::chrono::milliseconds(20));
    boost::system::error_code ec;
    co_await wait.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive) co_return;
  }
  auto removed = co_await client_->remove(kube::resources::leases(), options_.ns, options_.replica,
                                          kLeave);
  if (!removed && !removed.error().is(kube::ErrorKind::NotFound)) {
    spdlog::warn("replica {}: cannot delete its membership Lease: {}", options_.replica,
                 removed.error().describe());
  }
}

}  // namespace edgehub::hub

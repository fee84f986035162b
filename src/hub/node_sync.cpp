#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/hub/downstream.hpp>
#include <edgehub/hub/node_sync.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace edgehub::hub {

namespace asio = boost::asio;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Named options: see the GCC 12 note in upstream.cpp (no aggregate temporaries in co_await).
const kube::RequestOptions kRead{.priority = kube::Priority::NodeSync};
const kube::RequestOptions kWriteStatus{.priority = kube::Priority::NodeSync, .subresource = "status"};
const std::chrono::milliseconds kRetryDelay{1000};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  boost::system::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

}  // namespace

std::string_view record_kind(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::pod: return "Pod";
    case ObjectKind::configmap: return "ConfigMap";
    case ObjectKind::secret: return "Secret";
    case ObjectKind::node: return "Node";
    case ObjectKind::device: return "Device";
    case ObjectKind::devicemodel: return "DeviceModel";
    case ObjectKind::membership: return "Membership";  // never recorded: not an object
  }
  return "Unknown";
}

std::optional<ObjectKind> parse_record_kind(std::string_view kind) {
  for (auto k : {ObjectKind::pod, ObjectKind::configmap, ObjectKind::secret, ObjectKind::node,
                 ObjectKind::device, ObjectKind::devicemodel}) {
    if (record_kind(k) == kind) return k;
  }
  return std::nullopt;
}

std::string rfc3339_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NodeSyncRecord::to_json() const {
  json objs = json::array();
  for (const auto& [uid, o] : objects) {
    json item = {{"kind", record_kind(o.kind)}, {"name", o.name}, {"uid", o.uid}};
    if (!o.ns.empty()) item["namespace"] = o.ns;
    item["ackedResourceVersion"] = o.acked_version == 0 ? "" : std::to_string(o.acked_version);
    objs.push_back(std::move(item));
  }
  json meta = {{"name", node}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  json status = {{"owner", owner}, {"objects", std::move(objs)}};
  if (!owner_since.empty()) status["ownerSince"] = owner_since;
  json doc = {{"apiVersion", "edgehub.io/v1alpha1"},
              {"kind", "NodeSync"},
              {"metadata", std::move(meta)},
              {"status", std::move(status)}};
  return doc.dump();
}

std::optional<NodeSyncRecord> NodeSyncRecord::from_json(std::string_view raw) {
  const auto doc = wire::parse_json_bounded(raw, wire::kMaxApiJsonDepth);
  if (!doc.is_object()) return std::nullopt;
  NodeSyncRecord r;
  const auto& meta = doc.value("metadata", json::object());
  if (!meta.is_object()) return std::nullopt;
  r.node = meta.value("name", "");
  r.resource_version = meta.value("resourceVersion", "");
  const auto& status = doc.value("status", json::object());
  if (!status.is_object()) return r;
  if (status.contains("owner") && status["owner"].is_string()) r.owner = status["owner"];
  if (status.contains("ownerSince") && status["ownerSince"].is_string()) {
    r.owner_since = status["ownerSince"];
  }
  const auto objects = status.find("objects");
  if (objects == status.end() || !objects->is_array()) return r;
  for (const auto& item : *objects) {
    if (!item.is_object()) continue;
    const auto kind = parse_record_kind(item.value("kind", ""));
    const std::string uid = item.value("uid", "");
    if (!kind || uid.empty()) continue;
    SyncedObject o{*kind, item.value("namespace", ""), item.value("name", ""), uid,
                   resource_version_number(item.value("ackedResourceVersion", ""))};
    r.objects.emplace(uid, std::move(o));
  }
  return r;
}

NodeSync::NodeSync(std::shared_ptr<kube::Client> client, metrics::Registry& metrics,
                   NodeSyncOptions options, Deliver deliver, Claimed claimed, Lost lost)
    : client_(std::move(client)),
      options_(std::move(options)),
      deliver_(std::move(deliver)),
      claimed_(std::move(claimed)),
      lost_(std::move(lost)),
      writes_(metrics.counter("edgehub_nodesync_writes_total",
                              "NodeSync record writes (claims excluded), by result.", {"result"})),
      claims_(metrics.counter("edgehub_nodesync_claims_total",
                              "Nodes claimed by this replica (NodeSync owner written).")
                  .with({})),
      lost_claims_(metrics.counter("edgehub_nodesync_lost_total",
                                   "Nodes this replica held that another replica claimed.")
                       .with({})),
      conflicts_(metrics.counter("edgehub_nodesync_conflicts_total",
                                 "NodeSync writes refused for a stale resourceVersion (re-read "
                                 "and retried).")
                     .with({})),
      held_back_(metrics.counter("edgehub_nodesync_held_back_total",
                                 "First versions of objects held until the record write that "
                                 "adds them succeeded.")
                     .with({})),
      unknown_deletes_(metrics.counter("edgehub_nodesync_unheld_deletes_total",
                                       "Deletes not sent because the node's record shows its "
                                       "edge never held the object.")
                           .with({})),
      already_acked_(metrics.counter("edgehub_nodesync_already_acked_total",
                                     "Object versions not sent because the node's record shows "
                                     "its edge ACKed that version or a newer one.")
                         .with({})),
      stall_resyncs_(metrics.counter("edgehub_nodesync_stall_resyncs_total",
                                     "Resyncs of a node whose recorded objects stayed un-ACKed "
                                     "longer than the stall limit (a safety net; should stay 0).")
                         .with({})) {}

NodeSync::~NodeSync() { *alive_ = false; }

void NodeSync::start() {
  watcher_ = kube::Watcher::make(
      client_, kube::WatcherOptions{.resource = kube::resources::nodesyncs(), .name = "nodesyncs"},
      [this](kube::WatchEvent&& ev) { on_event(std::move(ev)); },
      [] {
        // Claims missed during a gap are caught by the next write's Conflict.
      });
  watcher_->start();
  schedule_tick();
}

void NodeSync::stop() {
  stopped_ = true;
  if (watcher_) watcher_->stop();
  if (tick_) tick_->cancel();
}

bool NodeSync::ready() const { return watcher_ && watcher_->established(); }

NodeSync::State* NodeSync::find(const std::string& node) {
  const auto it = states_.find(node);
  return it == states_.end() ? nullptr : it->second.get();
}

NodeSync::State* NodeSync::find(const std::string& node, std::uint64_t epoch) {
  State* s = find(node);
  return s != nullptr && s->epoch == epoch ? s : nullptr;
}

const NodeSyncRecord* NodeSync::record(const std::string& node) const {
  const auto it = states_.find(node);
  return it == states_.end() || !it->second->owned ? nullptr : &it->second->record;
}

std::uint64_t NodeSync::owner_session(const std::string& node) const {
  const auto it = states_.find(node);
  return it == states_.end() || !it->second->owned ? 0 : it->second->session_id;
}

std::string_view NodeSync::claim_state(const std::string& node) const {
  const auto it = states_.find(node);
  if (it == states_.end()) return "none";
  const State& s = *it->second;
  if (s.released) return "released";
  if (s.claim_queued) return "waiting";
  if (s.claim_pending || s.claiming) return "claiming";
  return s.owned ? "owned" : "none";
}

void NodeSync::claim(const std::string& node, std::uint64_t session_id) {
  auto& slot = states_[node];
  if (!slot) {
    slot = std::make_unique<State>();
    slot->record.node = node;
    slot->epoch = ++epochs_;
  } else if (session_id < slot->session_id) {
    spdlog::info("node {}: claim for session {} ignored: session {} is newer", node, session_id,
                 slot->session_id);
    return;
  } else if (session_id == slot->session_id && !slot->released) {
    if (slot->claim_pending || slot->claiming) return;  // running for this very session
    if (slot->owned) return claimed_(node, session_id, true, "");
  }
  if (session_id != slot->session_id) {
    // A new session: what the old one sent and never saw ACKed is resent by the new one's
    // resync; its stall clock starts again.
    slot->stalls = 0;
    for (auto& [uid, since] : slot->unacked) since = Clock::now();
  }
  slot->session_id = session_id;
  slot->released = false;
  slot->claim_pending = true;
  slot->owned = false;
  kick(node);
}

void NodeSync::admit(const std::string& node, Change change) {
  State* s = find(node);
  if (s == nullptr || !s->owned) return;
  auto waiting = std::find_if(s->waiting.begin(), s->waiting.end(),
                              [&](const Change& c) { return c.uid == change.uid; });
  const bool held = s->record.objects.contains(change.uid);
  if (change.operation == wire::operation::kDelete && !held) {
    unknown_deletes_.inc();
    return;
  }
  if (waiting != s->waiting.end()) {
    // Still unsent: the newest version goes, and a delete wins (a resync's list may cross a
    // newer watch event, or the delete).
    const bool keep = change.operation != wire::operation::kDelete &&
                      (waiting->operation == wire::operation::kDelete ||
                       change.resource_version < waiting->resource_version);
    if (!keep) *waiting = std::move(change);
    return;
  }
  if (held) {
    // A version the edge ACKed already (a configmap read again for a new pod, a list that
    // crossed a watch event) is not sent again: no ACK would come for it.
    const auto acked = s->record.objects.at(change.uid).acked_version;
    if (change.operation != wire::operation::kDelete && !change.ordered && acked != 0 &&
        change.resource_version <= acked) {
      already_acked_.inc();
      return;
    }
    s->unacked.try_emplace(change.uid, Clock::now());
    return deliver_(node, std::move(change));
  }
  s->record.objects.emplace(change.uid, SyncedObject{change.kind, change.ns, change.name,
                                                     change.uid, 0});
  s->unacked.emplace(change.uid, Clock::now());
  ++s->generation;
  s->dirty = true;
  s->waiting.push_back(std::move(change));
  held_back_.inc();
  kick(node);
}

void NodeSync::acked(const std::string& node, const Change& change) {
  State* s = find(node);
  if (s == nullptr) return;
  const auto it = s->record.objects.find(change.uid);
  if (it == s->record.objects.end()) return;
  s->unacked.erase(change.uid);
  s->stalls = 0;
  if (change.operation == wire::operation::kDelete) {
    s->record.objects.erase(it);
  } else if (change.resource_version > it->second.acked_version) {
    it->second.acked_version = change.resource_version;
  } else {
    return;
  }
  ++s->generation;
  s->dirty = true;
  schedule_write(node, *s);
}

void NodeSync::release(const std::string& node, std::uint64_t session_id) {
  State* s = find(node);
  if (s == nullptr || s->session_id != session_id) return;
  s->released = true;
  kick(node);
}

void NodeSync::remove_record(const std::string& node) {
  states_.erase(node);
  asio::co_spawn(
      client_->executor(),
      [this, node, alive = alive_]() -> asio::awaitable<void> {
        static const kube::DeleteOptions kRemove{.priority = kube::Priority::NodeSync};
        auto removed = co_await client_->remove(kube::resources::nodesyncs(), "", node, kRemove);
        if (*alive && !removed && !removed.error().is(kube::ErrorKind::NotFound)) {
          spdlog::warn("node {}: cannot delete the NodeSync record of the deleted Node: {}", node,
                       removed.error().describe());
        }
      },
      asio::detached);
}

void NodeSync::kick(const std::string& node) {
  State* s = find(node);
  if (s == nullptr || s->busy || stopped_) return;
  const bool due = s->released || flushing_ ||
                   Clock::now() - s->last_write >= options_.flush_interval;
  const bool work = s->claim_pending ||
                    (s->owned && (!s->waiting.empty() || (s->dirty && due)));
  if (!work) {
    if (s->released && (!s->dirty || !s->owned)) {
      states_.erase(node);
    } else if (s->owned && s->dirty) {
      schedule_write(node, *s);
    }
    return;
  }
  bool claim_slot = false;
  if (s->claim_pending) {
    if (claims_running_ >= options_.max_concurrent_claims) {
      // A reconnecting fleet: claims wait here as names, not as coroutines holding their
      // requests while the API's rate limit lets them through.
      if (!s->claim_queued) {
        s->claim_queued = true;
        claim_queue_.emplace_back(node, s->epoch);
      }
      return;
    }
    ++claims_running_;
    claim_slot = true;
  }
  s->claim_queued = false;
  s->busy = true;
  asio::co_spawn(client_->executor(), work_on(node, s->epoch, claim_slot), asio::detached);
}

void NodeSync::release_claim_slot() {
  --claims_running_;
  while (!stopped_ && claims_running_ < options_.max_concurrent_claims && !claim_queue_.empty()) {
    auto [node, epoch] = std::move(claim_queue_.front());
    claim_queue_.pop_front();
    State* s = find(node, epoch);
    if (s == nullptr || !s->claim_queued) continue;  // forgotten, or started since
    s->claim_queued = false;
    kick(node);
  }
}

asio::awaitable<void> NodeSync::work_on(std::string node, std::uint64_t epoch, bool claim_slot) {
  auto alive = alive_;
  for (;;) {
    if (!*alive || stopped_) co_return;
    State* s = find(node, epoch);
    if (s == nullptr) {
      if (claim_slot) release_claim_slot();
      co_return;
    }
    if (s->claim_pending) {
      s->claim_pending = false;
      if (!claim_slot) ++claims_running_;  // a reconnect while this node's writer ran
      claim_slot = true;
      s->claiming = true;
      co_await do_claim(node, epoch);
      if (!*alive) co_return;
      if (State* after = find(node, epoch)) after->claiming = false;
      claim_slot = false;
      release_claim_slot();
      continue;
    }
    const bool due = s->released || flushing_ ||
                     Clock::now() - s->last_write >= options_.flush_interval;
    if (s->owned && (!s->waiting.empty() || (s->dirty && due))) {
      const auto result = co_await write(node, epoch);
      if (!*alive) co_return;
      if (result == WriteResult::failed) co_await sleep_for(kRetryDelay);
      continue;
    }
    break;
  }
  if (!*alive) co_return;
  State* s = find(node, epoch);
  if (s == nullptr) co_return;
  s->busy = false;
  kick(node);  // erases a released node, or leaves it for the tick
}

namespace {

std::string empty_record(const std::string& node) {
  return json{{"apiVersion", "edgehub.io/v1alpha1"},
              {"kind", "NodeSync"},
              {"metadata", {{"name", node}}}}
      .dump();
}

}  // namespace

// The stored record read for a claim, merged into the node's state; the record to write
// (this replica as owner), or nullopt with `reason` set.
std::optional<std::string> NodeSync::claim_body(const std::string& node, State& s,
                                                const kube::Object& got, std::string& reason) {
  auto stored = NodeSyncRecord::from_json(got.raw);
  if (!stored) {
    reason = "unreadable NodeSync object";
    return std::nullopt;
  }
  // What the edge may hold is the union of what the record says and what this replica
  // still knows (a session that closed here moments ago).
  for (auto& [uid, o] : stored->objects) {
    auto [it, inserted] = s.record.objects.emplace(uid, o);
    if (!inserted) it->second.acked_version = std::max(it->second.acked_version, o.acked_version);
  }
  if (!stored->owner.empty() && stored->owner != options_.replica) {
    spdlog::info("node {}: taking over from replica {}", node, stored->owner);
  }
  s.record.owner = options_.replica;
  s.record.owner_since = rfc3339_now();
  s.record.resource_version = stored->resource_version;
  return s.record.to_json();
}

// Plain code around the awaits (coroutine frames hold every local and temporary, and each
// connecting node's claim holds its frame while it waits for the API).
asio::awaitable<bool> NodeSync::do_claim(std::string node, std::uint64_t epoch) {
  auto alive = alive_;
  std::string reason;
  // Every step below checks that the claim still runs for this session (claim_pending: a
  // newer connect superseded it), so the outcome is always reported for it.
  const std::uint64_t session = find(node, epoch)->session_id;
  for (int attempt = 0; attempt < options_.max_claim_attempts; ++attempt) {
    if (attempt > 0) co_await sleep_for(std::chrono::milliseconds(100 * attempt));
    if (!*alive || stopped_) co_return false;
    if (find(node, epoch) == nullptr || find(node, epoch)->claim_pending) co_return false;  // superseded
    auto got = co_await client_->get(kube::resources::nodesyncs(), "", node, kRead);
    if (!*alive) co_return false;
    if (!got && got.error().is(kube::ErrorKind::NotFound)) {
      got = co_await client_->create(kube::resources::nodesyncs(), "", empty_record(node), kRead);
      if (!*alive) co_return false;
      if (!got && got.error().is(kube::ErrorKind::AlreadyExists)) continue;
    }
    if (!got) {
      reason = got.error().describe();
      continue;
    }
    State* s = find(node, epoch);
    if (s == nullptr || s->claim_pending) co_return false;
    auto body = claim_body(node, *s, *got, reason);
    if (!body) continue;
    const auto generation = s->generation;
    auto written =
        co_await client_->update(kube::resources::nodesyncs(), "", node, *body, kWriteStatus);
    if (!*alive) co_return false;
    s = find(node, epoch);
    if (s == nullptr || s->claim_pending) co_return false;
    if (!written) {
      if (written.error().is(kube::ErrorKind::Conflict)) conflicts_.inc();
      reason = written.error().describe();
      continue;
    }
    s->record.resource_version = written->meta.resource_version;
    s->owned = true;
    s->last_write = Clock::now();
    if (generation == s->generation) s->dirty = false;
    claims_.inc();
    claimed_(node, session, true, "");
    co_return true;
  }
  State* s = find(node, epoch);
  if (s != nullptr && !s->claim_pending) {
    spdlog::warn("node {}: cannot claim its NodeSync record: {}", node, reason);
    s->owned = false;
    s->released = true;
    claimed_(node, session, false, reason);
  }
  co_return false;
}

asio::awaitable<NodeSync::WriteResult> NodeSync::write(std::string node, std::uint64_t epoch) {
  auto alive = alive_;
  State* s = find(node, epoch);
  const auto generation = s->generation;
  std::vector<Change> sent = std::move(s->waiting);
  s->waiting.clear();
  auto written = co_await client_->update(kube::resources::nodesyncs(), "", node,
                                          s->record.to_json(), kWriteStatus);
  if (!*alive) co_return WriteResult::failed;
  s = find(node, epoch);
  if (s == nullptr || !s->owned) co_return WriteResult::lost;
  // Anything that arrived meanwhile is newer than what was held with this write.
  auto put_back = [&] {
    for (auto& c : sent) {
      const bool newer = std::any_of(s->waiting.begin(), s->waiting.end(),
                                     [&](const Change& w) { return w.uid == c.uid; });
      if (!newer) s->waiting.push_back(std::move(c));
    }
  };
  if (written) {
    writes_.with({"ok"}).inc();
    s->record.resource_version = written->meta.resource_version;
    s->last_write = Clock::now();
    if (generation == s->generation) s->dirty = false;
    for (auto& c : sent) {
      const bool newer = std::any_of(s->waiting.begin(), s->waiting.end(),
                                     [&](const Change& w) { return w.uid == c.uid; });
      if (!newer) deliver_(node, std::move(c));
    }
    co_return WriteResult::ok;
  }
  if (written.error().is(kube::ErrorKind::Conflict)) {
    conflicts_.inc();
    writes_.with({"conflict"}).inc();
    auto current = co_await client_->get(kube::resources::nodesyncs(), "", node, kRead);
    if (!*alive) co_return WriteResult::failed;
    s = find(node, epoch);
    if (s == nullptr || !s->owned) co_return WriteResult::lost;
    put_back();
    if (!current) co_return WriteResult::failed;
    auto stored = NodeSyncRecord::from_json(current->raw);
    if (stored && stored->owner != options_.replica) {
      lose(node, stored->owner);
      co_return WriteResult::lost;
    }
    s->record.resource_version = current->meta.resource_version;
    co_return WriteResult::conflict_kept;
  }
  if (written.error().is(kube::ErrorKind::NotFound)) {
    // Someone deleted the record: it is ours, write it again from scratch.
    writes_.with({"recreated"}).inc();
    put_back();
    s->record.resource_version.clear();
    auto created =
        co_await client_->create(kube::resources::nodesyncs(), "", empty_record(node), kRead);
    if (!*alive) co_return WriteResult::failed;
    s = find(node, epoch);
    if (s == nullptr) co_return WriteResult::lost;
    if (created) s->record.resource_version = created->meta.resource_version;
    co_return created ? WriteResult::conflict_kept : WriteResult::failed;
  }
  writes_.with({"error"}).inc();
  spdlog::warn("node {}: NodeSync write failed (retrying): {}", node, written.error().describe());
  put_back();
  co_return WriteResult::failed;
}

void NodeSync::on_event(kube::WatchEvent&& ev) {
  if (ev.type != kube::EventType::Added && ev.type != kube::EventType::Modified) return;
  State* s = find(ev.object.meta.name);
  if (s == nullptr || !s->owned) return;  // not held here, or our own claim decides
  const auto owner = [&]() -> std::string {
    const auto doc = ev.object.json();
    if (!doc.is_object()) return {};
    const auto status = doc.find("status");
    if (status == doc.end() || !status->is_object()) return {};
    const auto o = status->find("owner");
    return o != status->end() && o->is_string() ? o->get<std::string>() : std::string();
  }();
  if (owner.empty() || owner == options_.replica) return;
  // An old event (written before our claim) must not take the node away.
  if (resource_version_number(ev.object.meta.resource_version) <=
      resource_version_number(s->record.resource_version)) {
    return;
  }
  lose(ev.object.meta.name, owner);
}

void NodeSync::lose(const std::string& node, const std::string& owner) {
  lost_claims_.inc();
  spdlog::info("node {}: claimed by replica {}; closing its session here", node, owner);
  states_.erase(node);
  lost_(node, owner);
}

void NodeSync::schedule_write(const std::string& node, State& s) {
  if (s.queued) return;
  s.queued = true;
  due_.push(Due{s.last_write + options_.flush_interval, node, s.epoch});
}

// Every 100 ms: the records whose coalesced write is due. Each record falls due
// `flush_interval` after its own last write, so the writes spread over the interval instead
// of leaving in one burst per tick (a burst of record writes delays the watch events behind
// it, here and on the API server).
void NodeSync::schedule_tick() {
  if (!tick_) tick_ = std::make_unique<asio::steady_timer>(client_->executor());
  tick_->expires_after(std::chrono::milliseconds(100));
  tick_->async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (ec || !*alive || stopped_) return;
    const auto now = Clock::now();
    while (!due_.empty() && due_.top().at <= now) {
      const Due d = due_.top();
      due_.pop();
      State* s = find(d.node, d.epoch);
      if (s == nullptr) continue;  // forgotten since; a reclaimed node has its own entry
      s->queued = false;
      kick(d.node);
    }
    check_stalls();
    schedule_tick();
  });
}

void NodeSync::check_stalls() {
  if (!stalled_) return;
  const auto now = Clock::now();
  if (now - last_stall_check_ < std::chrono::seconds(5)) return;
  last_stall_check_ = now;
  std::vector<std::pair<std::string, int>> stalled;
  for (auto& [node, s] : states_) {
    if (!s->owned) continue;
    bool late = false;
    for (auto it = s->unacked.begin(); it != s->unacked.end();) {
      if (!s->record.objects.contains(it->first)) {
        it = s->unacked.erase(it);
        continue;
      }
      if (now - it->second >= options_.stall_after) {
        late = true;
        it->second = now;  // judged again one stall period later
      }
      ++it;
    }
    if (late) stalled.emplace_back(node, ++s->stalls);
  }
  for (const auto& [node, times] : stalled) {
    stall_resyncs_.inc();
    spdlog::info("node {}: recorded objects un-ACKed for {} s ({} time(s) in a row)", node,
                 std::chrono::duration_cast<std::chrono::seconds>(options_.stall_after).count(),
                 times);
    stalled_(node, times);
  }
}

asio::awaitable<void> NodeSync::flush_all() {
  auto alive = alive_;
  flushing_ = true;
  std::vector<std::string> nodes;
  for (const auto& [node, s] : states_) nodes.push_back(node);
  for (const auto& node : nodes) kick(node);
  for (int i = 0; i < 200 && *alive; ++i) {
    const bool pending = std::any_of(states_.begin(), states_.end(), [](const auto& kv) {
      return kv.second->owned && (kv.second->busy || kv.second->dirty || !kv.second->waiting.empty());
    });
    if (!pending) break;
    co_await sleep_for(std::chrono::milliseconds(50));
  }
  if (*alive) flushing_ = false;
}

}  // namespace edgehub::hub

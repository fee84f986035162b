#include <edgehub/hub/delivery.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>

#include <algorithm>

namespace edgehub::hub {

std::string_view wire_type(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::pod: return "pod";
    case ObjectKind::configmap: return "configmap";
    case ObjectKind::secret: return "secret";
    case ObjectKind::node: return "node";
    case ObjectKind::device: return "device";
    case ObjectKind::devicemodel: return "devicemodel";
    case ObjectKind::membership: return "membership";
  }
  return "unknown";
}

std::string_view wire_source(ObjectKind kind) {
  return kind == ObjectKind::device || kind == ObjectKind::devicemodel ||
                 kind == ObjectKind::membership
             ? wire::source::kDeviceController
             : wire::source::kEdgeController;
}

Delivery::Delivery(DeliveryOptions options, Send send, Acked acked, Now now)
    : options_(options), send_(std::move(send)), acked_(std::move(acked)), now_(std::move(now)) {}

void Delivery::enqueue(Change change) {
  if (change.kind == ObjectKind::membership) {
    lane_.push_back(LaneItem{.unacked = std::move(change)});
    pump();
    return;
  }
  const bool is_delete = change.operation == wire::operation::kDelete;
  if (deleted_.contains(change.uid)) {
    ++stats_.stale;
    return;
  }
  auto& entry = entries_[change.uid];
  // Versions at or below what the edge has, or what is already on its way, are stale —
  // except a delete, which always wins, and an ordered change after an ordered delete (the
  // object joins the node again, possibly at the same version).
  const auto newest_known = std::max(
      {entry.acked_version, entry.flight ? entry.flight->change.resource_version : 0,
       entry.pending ? entry.pending->resource_version : 0});
  const bool pending_delete =
      entry.pending && entry.pending->operation == wire::operation::kDelete;
  const bool rejoins =
      change.ordered && (pending_delete || (entry.flight && entry.flight->change.operation ==
                                                                wire::operation::kDelete));
  if (!is_delete && !rejoins && (change.resource_version <= newest_known || pending_delete)) {
    ++stats_.stale;
    if (!entry.pending && !entry.flight && entry.acked_version == 0) entries_.erase(change.uid);
    return;
  }
  const bool ordered = change.ordered;
  if (entry.pending) {
    ++stats_.superseded;
    *entry.pending = std::move(change);
  } else {
    entry.pending = std::make_unique<Change>(std::move(change));
  }
  if (ordered) {
    // Its place is at the end of the lane; an older unsent version's place becomes void.
    entry.lane_seq = ++lane_counter_;
    lane_.push_back(LaneItem{.uid = entry.pending->uid, .seq = entry.lane_seq});
  } else if (!entry.flight && !entry.in_ready) {
    entry.in_ready = true;
    ready_.push_back(entry.pending->uid);
  }
  pump();
}

void Delivery::pump() {
  pump_lane();
  while (by_msg_id_.size() < options_.window && !ready_.empty()) {
    const std::string uid = std::move(ready_.front());
    ready_.pop_front();
    auto it = entries_.find(uid);
    if (it == entries_.end()) continue;
    auto& entry = it->second;
    entry.in_ready = false;
    if (!entry.pending || entry.flight) continue;
    Change change = std::move(*entry.pending);
    entry.pending.reset();
    send_first(entry, std::move(change));
  }
}

void Delivery::pump_lane() {
  while (lane_flight_.empty() && !lane_.empty()) {
    auto& head = lane_.front();
    if (head.unacked) {
      send_unacked(*head.unacked);
      lane_.pop_front();
      continue;
    }
    auto it = entries_.find(head.uid);
    if (it == entries_.end() || it->second.lane_seq != head.seq || !it->second.pending) {
      lane_.pop_front();  // superseded by a later place in the lane
      continue;
    }
    auto& entry = it->second;
    // The lane's one message in flight counts against the window like any other.
    if (entry.flight || by_msg_id_.size() >= options_.window) return;
    lane_flight_ = head.uid;
    lane_.pop_front();
    entry.lane_seq = 0;
    Change change = std::move(*entry.pending);
    entry.pending.reset();
    send_first(entry, std::move(change));
  }
}

void Delivery::send_unacked(const Change& change) {
  wire::Message m;
  m.header.msg_id = wire::new_message_id();
  m.header.timestamp = wire::now_millis();
  m.route.source = std::string(wire_source(change.kind));
  m.route.group = std::string(wire::group::kTwin);
  m.route.operation = change.operation;
  m.route.resource = std::string(wire_type(change.kind));
  m.content = change.object ? *change.object : std::string("null");
  ++stats_.sent;
  send_(wire::encode(m), change.received);
}

void Delivery::send_first(Entry& entry, Change change) {
  wire::Message m;
  m.header.msg_id = wire::new_message_id();
  m.header.timestamp = wire::now_millis();
  m.header.resource_version = std::to_string(change.resource_version);
  m.route.source = std::string(wire_source(change.kind));
  m.route.group = std::string(wire::group::kResource);
  m.route.operation = change.operation;
  m.route.resource = wire::format_resource(change.ns, wire_type(change.kind), change.name);
  m.content = change.object ? *change.object : std::string("null");
  const auto now = now_();
  entry.flight = std::make_unique<Flight>(Flight{std::move(change), m.header.msg_id,
                                                 wire::encode(m), now,
                                                 now + options_.retry_interval,
                                                 options_.retry_interval});
  by_msg_id_.emplace(entry.flight->msg_id, entry.flight->change.uid);
  ++stats_.sent;
  send_(entry.flight->frame, entry.flight->change.received);
}

bool Delivery::on_ack(const std::string& parent_msg_id) {
  const auto found = by_msg_id_.find(parent_msg_id);
  if (found == by_msg_id_.end()) return false;
  const std::string uid = found->second;
  by_msg_id_.erase(found);
  // An idle node keeps no bucket array for messages it no longer awaits.
  if (by_msg_id_.empty()) std::unordered_map<std::string, std::string>().swap(by_msg_id_);
  if (uid == lane_flight_) lane_flight_.clear();
  auto& entry = entries_.at(uid);
  const std::unique_ptr<Flight> flight = std::move(entry.flight);
  ++stats_.acked;
  const bool deleted = flight->change.operation == wire::operation::kDelete;
  entry.acked_version = deleted ? 0 : flight->change.resource_version;
  // An ordered delete with a newer change waiting (the object joins the node again) keeps
  // its entry; any other delete ends it.
  if (deleted && (!flight->change.ordered || !entry.pending)) {
    entries_.erase(uid);
    if (!flight->change.ordered) {
      const auto now = now_();
      forget_old_deletes(now);
      deleted_[uid] = now;
    }
  } else if (entry.pending && !entry.pending->ordered) {
    entry.in_ready = true;
    ready_.push_back(uid);
  }
  acked_(flight->change, now_() - flight->first_sent);
  pump();
  return true;
}

void Delivery::on_timer() {
  const auto now = now_();
  for (auto& [msg_id, uid] : by_msg_id_) {
    auto& flight = *entries_.at(uid).flight;
    if (flight.deadline > now) continue;
    flight.interval = std::min(flight.interval * 2, options_.max_retry_interval);
    flight.deadline = now + flight.interval;
    ++stats_.retried;
    send_(flight.frame, SteadyClock::time_point{});
  }
}

std::optional<SteadyClock::time_point> Delivery::next_deadline() const {
  std::optional<SteadyClock::time_point> next;
  for (const auto& [msg_id, uid] : by_msg_id_) {
    const auto deadline = entries_.at(uid).flight->deadline;
    if (!next || deadline < *next) next = deadline;
  }
  return next;
}

void Delivery::forget_old_deletes(SteadyClock::time_point now) {
  // Amortised: sweep only when the set has grown.
  if (deleted_.size() < 64 || deleted_.size() % 64 != 0) return;
  std::erase_if(deleted_, [&](const auto& d) { return now - d.second > options_.remember_deletes; });
}

std::vector<Delivery::ObjectState> Delivery::objects() const {
  std::vector<ObjectState> out;
  out.reserve(entries_.size());
  for (const auto& [uid, e] : entries_) {
    ObjectState o{.uid = uid, .acked_version = e.acked_version};
    if (e.pending) {
      o.pending_operation = e.pending->operation;
      o.pending_version = e.pending->resource_version;
    }
    if (e.flight) {
      o.flight_operation = e.flight->change.operation;
      o.flight_version = e.flight->change.resource_version;
      o.flight_sent = e.flight->first_sent;
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::uint64_t Delivery::acked_version(const std::string& uid) const {
  const auto it = entries_.find(uid);
  return it == entries_.end() ? 0 : it->second.acked_version;
}

}  // namespace edgehub::hub

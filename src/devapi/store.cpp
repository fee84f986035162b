#include <edgehub/devapi/store.hpp>

#include "util.hpp"
#include "validation.hpp"

namespace edgehub::devapi {

namespace {

std::string object_key(const ResourceInfo& resource, const std::string& ns,
                       const std::string& name) {
  return resource.namespaced ? ns + "/" + name : name;
}

// Key prefix of one namespace ("" for every namespace / cluster scope).
std::string scope_prefix(const ResourceInfo& resource, const std::string& ns) {
  return resource.namespaced && !ns.empty() ? ns + "/" : std::string();
}

const json& metadata_of(const json& object) {
  static const json empty = json::object();
  auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? *it : empty;
}

std::string meta_string(const json& object, const char* field) {
  const json& meta = metadata_of(object);
  auto it = meta.find(field);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

json labels_of(const json& object) {
  const json& meta = metadata_of(object);
  auto it = meta.find("labels");
  return it != meta.end() ? *it : json();
}

// Whether anything but metadata and status differs: what `generation` tracks. Compares in
// place; copying both objects showed up in the watch fan-out profile.
bool spec_changed(const json& a, const json& b) {
  auto skipped = [](const std::string& key) {
    return key == "metadata" || key == "status" || key == "kind" || key == "apiVersion";
  };
  std::size_t compared = 0;
  for (const auto& [key, value] : a.items()) {
    if (skipped(key)) continue;
    auto it = b.find(key);
    if (it == b.end() || *it != value) return true;
    ++compared;
  }
  std::size_t others = 0;
  for (const auto& [key, value] : b.items()) {
    if (!skipped(key)) ++others;
  }
  return others != compared;
}

json invalid_list_options(const std::string& field, const std::string& reason,
                          const std::string& detail) {
  (void)reason;
  return json::array({{{"reason", reason}, {"message", detail}, {"field", field}}});
}

[[noreturn]] void throw_list_options_invalid(const std::string& field, const std::string& reason,
                                             const std::string& detail) {
  const std::string message =
      "ListOptions.meta.k8s.io \"\" is invalid: " + field + ": " + detail;
  throw ApiError(422, "Invalid", message,
                 json{{"group", "meta.k8s.io"},
                      {"kind", "ListOptions"},
                      {"causes", invalid_list_options(field, reason, detail)}});
}

ApiError too_large_rv(std::uint64_t asked, std::uint64_t current) {
  return ApiError(504, "Timeout",
                  "Too large resource version: " + std::to_string(asked) +
                      ", current: " + std::to_string(current),
                  json{{"causes", json::array({{{"reason", "ResourceVersionTooLarge"},
                                                {"message", "Too large resource version"}}})},
                       {"retryAfterSeconds", 1}});
}

bool pod_is_terminal(const json& pod) {
  const std::string phase = pod.value("/status/phase"_json_pointer, "");
  return phase == "Succeeded" || phase == "Failed";
}

}  // namespace

const char* to_string(EventType type) {
  switch (type) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
    case EventType::kBookmark: return "BOOKMARK";
    case EventType::kError: return "ERROR";
  }
  return "ERROR";
}

Store::Store(std::size_t history_limit) : history_limit_(history_limit == 0 ? 1 : history_limit) {}

Store::~Store() = default;

Store::Bucket& Store::bucket(const ResourceInfo& resource) { return buckets_[&resource]; }

const Store::Bucket* Store::find_bucket(const ResourceInfo& resource) const {
  auto it = buckets_.find(&resource);
  return it == buckets_.end() ? nullptr : &it->second;
}

std::uint64_t Store::next_rv() { return ++rv_; }

std::uint64_t Store::parse_rv(const std::string& text) const {
  std::uint64_t value = 0;
  if (text.empty()) return 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      throw ApiError::bad_request("invalid resource version \"" + text + "\"");
    }
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return value;
}

void Store::commit(const ResourceInfo& resource, EventType type,
                   std::shared_ptr<const json> object, std::shared_ptr<const json> previous) {
  StoreEvent event;
  event.rv = rv_;
  event.resource = &resource;
  event.type = type;
  event.object_text = std::make_shared<const std::string>(object->dump());
  event.object = std::move(object);
  event.previous = std::move(previous);
  for (const auto& [id, watch] : watches_) {
    if (watch.resource == &resource) dispatch(watch, event);
  }
  history_.push_back(std::move(event));
  while (history_.size() > history_limit_) {
    compacted_rv_ = history_.front().rv;
    history_.pop_front();
  }
}

void Store::dispatch(const Watch& watch, const StoreEvent& event) const {
  auto matches = [&](const json& object) {
    if (!watch.ns.empty() && meta_string(object, "namespace") != watch.ns) return false;
    return watch.labels.matches(labels_of(object)) && watch.fields.matches(object);
  };
  const bool now = matches(*event.object);
  if (event.type == EventType::kModified) {
    const bool before = event.previous && matches(*event.previous);
    if (now && before) {
      watch.sink->deliver(EventType::kModified, event);
    } else if (now) {
      watch.sink->deliver(EventType::kAdded, event);
    } else if (before) {
      watch.sink->deliver(EventType::kDeleted, event);
    }
  } else if (now) {
    watch.sink->deliver(event.type, event);
  }
}

json Store::create(const ResourceInfo& resource, const std::string& ns, json object) {
  if (!object.is_object()) {
    throw ApiError::bad_request("the object provided is unrecognized (must be of type " +
                                resource.kind + ")");
  }
  if (object.contains("kind") && object["kind"] != resource.kind) {
    throw ApiError::bad_request("the object provided is unrecognized (must be of type " +
                                resource.kind + ")");
  }
  object["kind"] = resource.kind;
  object["apiVersion"] = resource.api_version();
  json& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  if (resource.namespaced) {
    const std::string body_ns = meta.value("namespace", "");
    if (!body_ns.empty() && body_ns != ns) {
      throw ApiError::bad_request(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
    if (ns.empty()) throw ApiError::bad_request("a namespace is required to create " + resource.resource);
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if (meta.value("name", "").empty() && !meta.value("generateName", "").empty()) {
    meta["name"] = meta.value("generateName", "") + detail::new_uid().substr(0, 5);
  }
  detail::validate_for_create(resource, object);
  detail::apply_defaults(resource, object);
  meta.erase("deletionTimestamp");
  meta.erase("deletionGracePeriodSeconds");
  meta.erase("managedFields");
  meta.erase("selfLink");
  const std::string name = meta["name"].get<std::string>();

  std::lock_guard lock(mutex_);
  Bucket& objects = bucket(resource);
  const std::string key = object_key(resource, ns, name);
  if (objects.count(key) != 0) throw ApiError::already_exists(resource, name);
  meta["uid"] = detail::new_uid();
  meta["creationTimestamp"] = detail::rfc3339_now();
  if (object.contains("spec")) meta["generation"] = 1;
  meta["resourceVersion"] = std::to_string(next_rv());
  auto stored = std::make_shared<const json>(std::move(object));
  objects[key] = stored;
  commit(resource, EventType::kAdded, stored, nullptr);
  return *stored;
}

json Store::get(const ResourceInfo& resource, const std::string& ns,
                const std::string& name) const {
  std::lock_guard lock(mutex_);
  const Bucket* objects = find_bucket(resource);
  if (objects != nullptr) {
    auto it = objects->find(object_key(resource, ns, name));
    if (it != objects->end()) return *it->second;
  }
  throw ApiError::not_found(resource, name);
}

json Store::list(const ResourceInfo& resource, const std::string& ns,
                 const ListOptions& options) const {
  const auto labels = LabelSelector::parse(options.label_selector);
  const auto fields = FieldSelector::parse(options.field_selector, resource);
  const std::string rv_text = options.resource_version.value_or("");
  if (options.resource_version_match) {
    const std::string& match = *options.resource_version_match;
    if (rv_text.empty()) {
      throw_list_options_invalid(
          "resourceVersionMatch", "FieldValueForbidden",
          "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
    }
    if (match != "NotOlderThan" && match != "Exact") {
      throw_list_options_invalid("resourceVersionMatch", "FieldValueNotSupported",
                                 "Unsupported value: \"" + match +
                                     "\": supported values: \"Exact\", \"NotOlderThan\", \"\"");
    }
    if (match == "Exact" && rv_text == "0") {
      throw_list_options_invalid(
          "resourceVersionMatch", "FieldValueForbidden",
          "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
    if (!options.continue_token.empty()) {
      throw_list_options_invalid("resourceVersionMatch", "FieldValueForbidden",
                                 "Forbidden: resourceVersionMatch is forbidden when continue "
                                 "is provided");
    }
  }
  if (!options.continue_token.empty() && !rv_text.empty() && rv_text != "0") {
    throw ApiError::bad_request(
        "specifying resource version is not allowed when using continue");
  }
  const std::uint64_t asked_rv = parse_rv(rv_text);

  std::string start_key;
  std::uint64_t token_rv = 0;
  if (!options.continue_token.empty()) {
    const auto raw = detail::base64_decode(options.continue_token);
    if (!raw) {
      throw ApiError::bad_request("invalid continue token: illegal base64 data");
    }
    json token = json::parse(*raw, nullptr, false);
    if (token.is_discarded() || !token.is_object() || !token.contains("start") ||
        !token["start"].is_string() || !token.contains("rv") || !token["rv"].is_number_unsigned()) {
      throw ApiError::bad_request(
          "invalid continue token: continue key is not valid: invalid character looking for "
          "beginning of value");
    }
    if (token.value("v", "") != "meta.k8s.io/v1") {
      throw ApiError::bad_request("invalid continue token: continue key is not valid: server "
                                  "does not recognize this encoded version");
    }
    start_key = token["start"].get<std::string>();
    token_rv = token["rv"].get<std::uint64_t>();
  }

  std::lock_guard lock(mutex_);
  if (asked_rv > rv_ && (options.resource_version_match || asked_rv != 0)) {
    throw too_large_rv(asked_rv, rv_);
  }
  if (options.resource_version_match == "Exact" && asked_rv != rv_) {
    // No snapshots are kept: only the current state can be listed exactly.
    throw ApiError::expired("The resourceVersion for the provided list is too old.");
  }
  const std::uint64_t list_rv = token_rv != 0 ? token_rv : rv_;
  const std::string prefix = scope_prefix(resource, ns);
  json items = json::array();
  std::string last_key;
  bool more = false;
  std::int64_t remaining = 0;
  if (const Bucket* objects = find_bucket(resource)) {
    auto it = start_key.empty() ? objects->lower_bound(prefix) : objects->lower_bound(start_key);
    for (; it != objects->end(); ++it) {
      if (it->first.compare(0, prefix.size(), prefix) != 0) break;
      const json& object = *it->second;
      if (!labels.matches(labels_of(object)) || !fields.matches(object)) continue;
      if (options.limit > 0 && static_cast<std::int64_t>(items.size()) >= options.limit) {
        more = true;
        ++remaining;
        continue;
      }
      json item = object;
      item.erase("kind");
      item.erase("apiVersion");
      items.push_back(std::move(item));
      last_key = it->first;
    }
  }
  json meta = {{"resourceVersion", std::to_string(list_rv)}};
  if (more) {
    const json token = {{"v", "meta.k8s.io/v1"}, {"rv", list_rv}, {"start", last_key + '\0'}};
    meta["continue"] = detail::base64url_encode(token.dump());
    if (labels.empty() && fields.empty()) meta["remainingItemCount"] = remaining;
  }
  return {{"kind", resource.kind + "List"},
          {"apiVersion", resource.api_version()},
          {"metadata", meta},
          {"items", items}};
}

json Store::update(const ResourceInfo& resource, const std::string& ns, const std::string& name,
                   json object, bool status_subresource) {
  if (!object.is_object()) {
    throw ApiError::bad_request("the object provided is unrecognized (must be of type " +
                                resource.kind + ")");
  }
  json& meta = object["metadata"];
  if (!meta.is_object()) meta = json::object();
  const std::string body_name = meta.value("name", "");
  if (!body_name.empty() && body_name != name) {
    throw ApiError::bad_request("the name of the object (" + body_name +
                                ") does not match the name on the URL (" + name + ")");
  }
  if (resource.namespaced) {
    const std::string body_ns = meta.value("namespace", "");
    if (!body_ns.empty() && body_ns != ns) {
      throw ApiError::bad_request(
          "the namespace of the provided object does not match the namespace sent on the "
          "request");
    }
  }
  std::lock_guard lock(mutex_);
  Bucket& objects = bucket(resource);
  auto it = objects.find(object_key(resource, ns, name));
  if (it == objects.end()) throw ApiError::not_found(resource, name);
  const std::string wanted_rv = meta.value("resourceVersion", "");
  if (!wanted_rv.empty() && wanted_rv != meta_string(*it->second, "resourceVersion")) {
    throw ApiError::stale_resource_version(resource, name);
  }
  return store_update(resource, it->second, std::move(object), status_subresource);
}

json Store::patch(const ResourceInfo& resource, const std::string& ns, const std::string& name,
                  PatchType type, const json& patch, bool status_subresource) {
  std::lock_guard lock(mutex_);
  Bucket& objects = bucket(resource);
  auto it = objects.find(object_key(resource, ns, name));
  if (it == objects.end()) throw ApiError::not_found(resource, name);
  const std::shared_ptr<const json> old = it->second;
  json patched = apply_patch(type, *old, patch);
  if (!patched.is_object() || !patched["metadata"].is_object()) {
    throw ApiError(422, "Invalid", "the patch removed the object's metadata", json::object());
  }
  const std::string rv_after = meta_string(patched, "resourceVersion");
  if (!rv_after.empty() && rv_after != meta_string(*old, "resourceVersion")) {
    throw ApiError::stale_resource_version(resource, name);
  }
  return store_update(resource, old, std::move(patched), status_subresource);
}

// Called with the lock held; `old` (held by value: the bucket entry may be erased here) is the
// stored object being replaced.
json Store::store_update(const ResourceInfo& resource, std::shared_ptr<const json> old,
                         json updated, bool status_subresource) {
  json result;
  if (status_subresource) {
    result = *old;
    if (updated.contains("status")) {
      result["status"] = updated["status"];
    } else {
      result.erase("status");
    }
  } else {
    result = std::move(updated);
    if (resource.has_status) {
      if (old->contains("status")) {
        result["status"] = (*old)["status"];
      } else {
        result.erase("status");
      }
    }
  }
  result["kind"] = resource.kind;
  result["apiVersion"] = resource.api_version();
  json& meta = result["metadata"];
  if (!meta.is_object()) meta = json::object();
  const json& old_meta = metadata_of(*old);
  for (const char* field : {"name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                            "deletionGracePeriodSeconds", "generation"}) {
    if (old_meta.contains(field)) {
      meta[field] = old_meta[field];
    } else {
      meta.erase(field);
    }
  }
  meta.erase("managedFields");
  meta.erase("selfLink");
  meta["resourceVersion"] = old_meta.value("resourceVersion", "");
  if (!status_subresource && spec_changed(result, *old)) {
    meta["generation"] = old_meta.value("generation", 0) + 1;
  }
  if (result == *old) return result;  // a no-op write: no new resourceVersion, no event

  const std::string name = meta.value("name", "");
  const std::string key = object_key(resource, meta.value("namespace", ""), name);
  meta["resourceVersion"] = std::to_string(next_rv());
  const bool finalized = meta.contains("deletionTimestamp") &&
                         (!meta.contains("finalizers") || meta["finalizers"].empty()) &&
                         !(resource.resource == "pods");
  auto stored = std::make_shared<const json>(std::move(result));
  if (finalized) {
    bucket(resource).erase(key);
    commit(resource, EventType::kDeleted, stored, old);
  } else {
    bucket(resource)[key] = stored;
    commit(resource, EventType::kModified, stored, old);
  }
  return *stored;
}

DeleteResult Store::remove(const ResourceInfo& resource, const std::string& ns,
                           const std::string& name, const DeleteOptions& options) {
  std::lock_guard lock(mutex_);
  return delete_locked(resource, object_key(resource, ns, name), options);
}

DeleteResult Store::delete_locked(const ResourceInfo& resource, const std::string& key,
                                  const DeleteOptions& options) {
  Bucket& objects = bucket(resource);
  auto it = objects.find(key);
  if (it == objects.end()) {
    const auto slash = key.find('/');
    throw ApiError::not_found(resource, slash == std::string::npos ? key : key.substr(slash + 1));
  }
  const std::shared_ptr<const json> old = it->second;
  const std::string name = meta_string(*old, "name");
  if (options.precondition_uid && *options.precondition_uid != meta_string(*old, "uid")) {
    throw ApiError::conflict(resource, name,
                             "Precondition failed: UID in precondition: " +
                                 *options.precondition_uid +
                                 ", UID in object meta: " + meta_string(*old, "uid"));
  }
  if (options.precondition_resource_version &&
      *options.precondition_resource_version != meta_string(*old, "resourceVersion")) {
    throw ApiError::conflict(resource, name,
                             "Precondition failed: ResourceVersion in precondition: " +
                                 *options.precondition_resource_version +
                                 ", ResourceVersion in object meta: " +
                                 meta_string(*old, "resourceVersion"));
  }
  const bool is_pod = resource.resource == "pods";
  const json& old_meta = metadata_of(*old);
  const bool has_finalizers = old_meta.contains("finalizers") && !old_meta["finalizers"].empty();

  std::int64_t grace = 0;
  if (is_pod) {
    grace = options.grace_period_seconds.value_or(
        old->value("/spec/terminationGracePeriodSeconds"_json_pointer, std::int64_t{30}));
    if (old->value("/spec/nodeName"_json_pointer, "").empty() || pod_is_terminal(*old)) grace = 0;
    if (grace < 0) grace = 0;
  }

  if (is_pod || has_finalizers) {
    // Graceful deletion: mark first (MODIFIED); the object goes once the grace period is 0
    // (there is no kubelet here to confirm termination) and no finalizer remains.
    const bool marked = old_meta.contains("deletionTimestamp");
    const std::int64_t old_grace = old_meta.value("deletionGracePeriodSeconds", std::int64_t{-1});
    std::shared_ptr<const json> current = old;
    if (!marked || (is_pod && grace < old_grace)) {
      json next = *old;
      next["metadata"]["deletionTimestamp"] = detail::rfc3339_now(grace);
      if (is_pod) next["metadata"]["deletionGracePeriodSeconds"] = grace;
      next["metadata"]["resourceVersion"] = std::to_string(next_rv());
      current = std::make_shared<const json>(std::move(next));
      objects[key] = current;
      commit(resource, EventType::kModified, current, old);
    }
    if ((is_pod && grace > 0) || has_finalizers) return {*current, false};
    json last = *current;
    last["metadata"]["resourceVersion"] = std::to_string(next_rv());
    auto final_state = std::make_shared<const json>(std::move(last));
    objects.erase(key);
    commit(resource, EventType::kDeleted, final_state, current);
    return {*final_state, true};
  }

  json last = *old;
  last["metadata"]["resourceVersion"] = std::to_string(next_rv());
  auto final_state = std::make_shared<const json>(std::move(last));
  objects.erase(key);
  commit(resource, EventType::kDeleted, final_state, old);
  if (resource.resource == "namespaces") {
    // Cascade: everything in the namespace goes with it (no namespace controller here).
    const std::string prefix = name + "/";
    for (const auto& info : builtin_resources()) {
      if (!info.namespaced) continue;
      Bucket& inner = bucket(info);
      for (auto obj = inner.lower_bound(prefix);
           obj != inner.end() && obj->first.compare(0, prefix.size(), prefix) == 0;) {
        json gone = *obj->second;
        gone["metadata"]["resourceVersion"] = std::to_string(next_rv());
        auto previous = obj->second;
        obj = inner.erase(obj);
        commit(info, EventType::kDeleted, std::make_shared<const json>(std::move(gone)), previous);
      }
    }
    return {*final_state, true};
  }
  return {success_status(resource, name, meta_string(*old, "uid")), true};
}

json Store::remove_collection(const ResourceInfo& resource, const std::string& ns,
                              const ListOptions& options, const DeleteOptions& delete_options) {
  const auto labels = LabelSelector::parse(options.label_selector);
  const auto fields = FieldSelector::parse(options.field_selector, resource);
  std::lock_guard lock(mutex_);
  Bucket& objects = bucket(resource);
  const std::string prefix = scope_prefix(resource, ns);
  std::vector<std::string> keys;
  for (auto it = objects.lower_bound(prefix);
       it != objects.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (labels.matches(labels_of(*it->second)) && fields.matches(*it->second)) {
      keys.push_back(it->first);
    }
  }
  json items = json::array();
  for (const auto& key : keys) {
    DeleteResult result = delete_locked(resource, key, delete_options);
    if (result.body.value("kind", "") != "Status") {
      result.body.erase("kind");
      result.body.erase("apiVersion");
      items.push_back(std::move(result.body));
    }
  }
  return {{"kind", resource.kind + "List"},
          {"apiVersion", resource.api_version()},
          {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
          {"items", items}};
}

std::uint64_t Store::watch(const ResourceInfo& resource, const WatchOptions& options,
                           std::shared_ptr<Watcher> watcher) {
  Watch watch{&resource, resource.namespaced ? options.namespace_ : std::string(),
              LabelSelector::parse(options.label_selector),
              FieldSelector::parse(options.field_selector, resource), std::move(watcher)};
  if (options.resource_version_match) {
    if (!options.send_initial_events) {
      throw_list_options_invalid("resourceVersionMatch", "FieldValueForbidden",
                                 "Forbidden: resourceVersionMatch is forbidden for watch unless "
                                 "sendInitialEvents is provided");
    }
    if (*options.resource_version_match != "NotOlderThan") {
      throw_list_options_invalid("resourceVersionMatch", "FieldValueNotSupported",
                                 "Unsupported value: \"" + *options.resource_version_match +
                                     "\": supported values: \"NotOlderThan\"");
    }
  } else if (options.send_initial_events) {
    throw_list_options_invalid("sendInitialEvents", "FieldValueForbidden",
                               "Forbidden: sendInitialEvents is forbidden for watch unless the "
                               "WatchList feature gate is enabled");
  }
  const std::string rv_text = options.resource_version.value_or("");
  const std::uint64_t from = parse_rv(rv_text);
  const bool initial = options.send_initial_events || rv_text.empty() || rv_text == "0";

  std::lock_guard lock(mutex_);
  if (initial) {
    const std::string prefix = scope_prefix(resource, watch.ns);
    if (const Bucket* objects = find_bucket(resource)) {
      for (auto it = objects->lower_bound(prefix);
           it != objects->end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
        StoreEvent event;
        event.rv = parse_rv(meta_string(*it->second, "resourceVersion"));
        event.resource = &resource;
        event.type = EventType::kAdded;
        event.object = it->second;
        event.object_text = std::make_shared<const std::string>(it->second->dump());
        dispatch(watch, event);
      }
    }
    if (options.allow_bookmarks && (options.send_initial_events || rv_text.empty())) {
      watch.sink->bookmark(rv_, true);
    }
  } else {
    if (from < compacted_rv_) {
      throw ApiError::expired("too old resource version: " + std::to_string(from) + " (" +
                              std::to_string(compacted_rv_ + 1) + ")");
    }
    for (const auto& event : history_) {
      if (event.rv > from && event.resource == &resource) dispatch(watch, event);
    }
  }
  const std::uint64_t id = next_watch_id_++;
  watches_.emplace(id, std::move(watch));
  return id;
}

void Store::unwatch(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  watches_.erase(id);
}

void Store::request_bookmark(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = watches_.find(id);
  if (it != watches_.end()) it->second.sink->bookmark(rv_, false);
}

std::uint64_t Store::current_resource_version() const {
  std::lock_guard lock(mutex_);
  return rv_;
}

std::size_t Store::watcher_count() const {
  std::lock_guard lock(mutex_);
  return watches_.size();
}

void Store::expire_history() {
  std::lock_guard lock(mutex_);
  history_.clear();
  compacted_rv_ = rv_;
}

void Store::close_watchers() {
  std::map<std::uint64_t, Watch> closing;
  {
    std::lock_guard lock(mutex_);
    closing.swap(watches_);
    for (auto& [id, watch] : closing) watch.sink->close();
  }
}

}  // namespace edgehub::devapi

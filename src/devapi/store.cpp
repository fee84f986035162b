#include <edgehub/devapi/store.hpp>
#include <edgehub/wire/json_safe.hpp>

#include "store_detail.hpp"
#include "util.hpp"
#include "validation.hpp"

namespace edgehub::devapi {

using namespace detail;  // NOLINT: the store helpers

namespace {

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

bool pod_is_terminal(const json& pod) {
  const std::string phase = pod.value("/status/phase"_json_pointer, "");
  return phase == "Succeeded" || phase == "Failed";
}

}  // namespace

const char* to_string(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
    case EventType::kError:
      return "ERROR";
  }
  return "ERROR";
}

Store::Store(std::size_t history_limit) : history_limit_(history_limit == 0 ? 1 : history_limit) {}

Store::~Store() = default;

Store::Bucket& Store::bucket(const ResourceInfo& resource) {
  return buckets_[&resource];
}

const Store::Bucket* Store::find_bucket(const ResourceInfo& resource) const {
  auto it = buckets_.find(&resource);
  return it == buckets_.end() ? nullptr : &it->second;
}

std::uint64_t Store::next_rv() {
  return ++rv_;
}

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

void Store::commit(const ResourceInfo& resource, EventType type, std::shared_ptr<const json> object,
                   std::shared_ptr<const json> previous) {
  StoreEvent event;
  event.rv = rv_;
  event.resource = &resource;
  event.type = type;
  event.object_text = std::make_shared<const std::string>(wire::dump_json(*object));
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
    if (ns.empty())
      throw ApiError::bad_request("a namespace is required to create " + resource.resource);
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
    throw ApiError::conflict(
        resource, name,
        "Precondition failed: UID in precondition: " + *options.precondition_uid +
            ", UID in object meta: " + meta_string(*old, "uid"));
  }
  if (options.precondition_resource_version &&
      *options.precondition_resource_version != meta_string(*old, "resourceVersion")) {
    throw ApiError::conflict(
        resource, name,
        "Precondition failed: ResourceVersion in precondition: " +
            *options.precondition_resource_version +
            ", ResourceVersion in object meta: " + meta_string(*old, "resourceVersion"));
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

}  // namespace edgehub::devapi

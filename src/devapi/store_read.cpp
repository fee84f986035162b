// The read side of the store: LIST with selectors and paging, and WATCH registration,
// replay and per-watcher filtering.
#include <edgehub/devapi/store.hpp>
#include <edgehub/wire/json_safe.hpp>

#include "store_detail.hpp"
#include "util.hpp"

namespace edgehub::devapi {

using namespace detail;  // NOLINT: the store helpers

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
    throw ApiError::bad_request("specifying resource version is not allowed when using continue");
  }
  const std::uint64_t asked_rv = parse_rv(rv_text);

  std::string start_key;
  std::uint64_t token_rv = 0;
  if (!options.continue_token.empty()) {
    const auto raw = detail::base64_decode(options.continue_token);
    if (!raw) {
      throw ApiError::bad_request("invalid continue token: illegal base64 data");
    }
    json token = wire::parse_json_bounded(*raw, wire::kMaxApiJsonDepth);
    if (token.is_discarded() || !token.is_object() || !token.contains("start") ||
        !token["start"].is_string() || !token.contains("rv") || !token["rv"].is_number_unsigned()) {
      throw ApiError::bad_request(
          "invalid continue token: continue key is not valid: invalid character looking for "
          "beginning of value");
    }
    if (token.value("v", "") != "meta.k8s.io/v1") {
      throw ApiError::bad_request(
          "invalid continue token: continue key is not valid: server "
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
    meta["continue"] = detail::base64url_encode(wire::dump_json(token));
    if (labels.empty() && fields.empty()) meta["remainingItemCount"] = remaining;
  }
  return {{"kind", resource.kind + "List"},
          {"apiVersion", resource.api_version()},
          {"metadata", meta},
          {"items", items}};
}

std::uint64_t Store::watch(const ResourceInfo& resource, const WatchOptions& options,
                           std::shared_ptr<Watcher> watcher) {
  // Parsed before the aggregate is built: GCC 12 double-destroys the members already built
  // when a later initializer throws (PR c++/66139).
  LabelSelector labels = LabelSelector::parse(options.label_selector);
  FieldSelector fields = FieldSelector::parse(options.field_selector, resource);
  Watch watch{&resource, resource.namespaced ? options.namespace_ : std::string(),
              std::move(labels), std::move(fields), std::move(watcher)};
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
        event.object_text = std::make_shared<const std::string>(wire::dump_json(*it->second));
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

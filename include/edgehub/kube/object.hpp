#pragma once

#include <edgehub/kube/error.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgehub::kube {

struct ObjectMeta {
  std::string name;
  std::string namespace_;
  std::string uid;
  std::string resource_version;
};

// An API object kept as the exact JSON text the server sent (the hub forwards it verbatim),
// with the few fields everyone needs decoded up front. Full parsing happens on demand.
struct Object {
  std::string kind;
  ObjectMeta meta;
  std::string node_name;  // spec.nodeName when present (pods)
  std::string raw;

  // Parses `raw`; a value_t::discarded json when raw is not valid JSON.
  nlohmann::json json() const;
  // "namespace/name", or "name" for cluster-scoped objects.
  std::string key() const;
};

struct ObjectList {
  std::string kind;
  std::string resource_version;
  std::string continue_token;
  std::optional<std::int64_t> remaining_item_count;
  std::vector<Object> items;
};

enum class EventType { Added, Modified, Deleted, Bookmark, Error };
std::string_view to_string(EventType type) noexcept;

struct WatchEvent {
  EventType type = EventType::Added;
  Object object;               // for Error: the Status object
  std::optional<Error> error;  // set for Error events (e.g. 410 Expired)
};

// Decoders that extract the envelope with a scanner and keep the raw object text; they never
// build a DOM for the object itself.
Result<Object> decode_object(std::string_view body);
Result<ObjectList> decode_list(std::string_view body);
Result<WatchEvent> decode_watch_event(std::string_view line);

}  // namespace edgehub::kube

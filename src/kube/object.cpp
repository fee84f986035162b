#include <edgehub/kube/object.hpp>
#include <edgehub/wire/json_safe.hpp>

#include "json_scan.hpp"

#include <charconv>

namespace edgehub::kube {

nlohmann::json Object::json() const { return wire::parse_json_bounded(raw, wire::kMaxApiJsonDepth); }

std::string Object::key() const {
  if (meta.namespace_.empty()) return meta.name;
  return meta.namespace_ + "/" + meta.name;
}

std::string_view to_string(EventType type) noexcept {
  switch (type) {
    case EventType::Added: return "ADDED";
    case EventType::Modified: return "MODIFIED";
    case EventType::Deleted: return "DELETED";
    case EventType::Bookmark: return "BOOKMARK";
    case EventType::Error: return "ERROR";
  }
  return "UNKNOWN";
}

namespace {

Error protocol(std::string what, std::string_view text) {
  std::string ex(text.substr(0, 120));
  for (auto& c : ex) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return make_error(ErrorKind::Protocol, what + ": " + ex + (text.size() > 120 ? "..." : ""));
}

bool assign_string(std::string_view token, std::string& out) {
  if (scan::is_null(token)) return true;
  auto s = scan::string_value(token);
  if (!s) return false;
  out = std::move(*s);
  return true;
}

// Fills kind, metadata and spec.nodeName from an object's text, leaving `raw` alone.
bool scan_envelope(std::string_view text, Object& obj) {
  bool ok = true;
  bool well_formed = scan::for_each_member(text, [&](std::string_view key, std::string_view v) {
    if (key == "kind") {
      ok = assign_string(v, obj.kind);
    } else if (key == "metadata") {
      ok = scan::for_each_member(v, [&](std::string_view k, std::string_view mv) {
        if (k == "name") {
          ok = assign_string(mv, obj.meta.name);
        } else if (k == "namespace") {
          ok = assign_string(mv, obj.meta.namespace_);
        } else if (k == "uid") {
          ok = assign_string(mv, obj.meta.uid);
        } else if (k == "resourceVersion") {
          ok = assign_string(mv, obj.meta.resource_version);
        }
        return ok;
      }) && ok;
    } else if (key == "spec" && !scan::is_null(v)) {
      ok = scan::for_each_member(v, [&](std::string_view k, std::string_view sv) {
        if (k == "nodeName") {
          ok = assign_string(sv, obj.node_name);
          return false;
        }
        return true;
      }) && ok;
    }
    return ok;
  });
  return well_formed && ok;
}

}  // namespace

Result<Object> decode_object(std::string_view body) {
  Object obj;
  if (!scan_envelope(body, obj)) return protocol("malformed object", body);
  obj.raw.assign(body);
  return obj;
}

Result<ObjectList> decode_list(std::string_view body) {
  ObjectList list;
  bool ok = true;
  bool saw_items = false;
  std::string failure;
  bool well_formed = scan::for_each_member(body, [&](std::string_view key, std::string_view v) {
    if (key == "kind") {
      ok = assign_string(v, list.kind);
    } else if (key == "metadata") {
      ok = scan::for_each_member(v, [&](std::string_view k, std::string_view mv) {
        if (k == "resourceVersion") {
          ok = assign_string(mv, list.resource_version);
        } else if (k == "continue") {
          ok = assign_string(mv, list.continue_token);
        } else if (k == "remainingItemCount") {
          std::int64_t n = 0;
          auto [p, ec] = std::from_chars(mv.data(), mv.data() + mv.size(), n);
          ok = ec == std::errc{} && p == mv.data() + mv.size();
          if (ok) list.remaining_item_count = n;
        }
        return ok;
      }) && ok;
    } else if (key == "items") {
      saw_items = true;
      if (scan::is_null(v)) return true;
      ok = scan::for_each_element(v, [&](std::string_view item) {
        Object obj;
        if (!scan_envelope(item, obj)) return false;
        obj.raw.assign(item);
        list.items.push_back(std::move(obj));
        return true;
      });
    }
    return ok;
  });
  if (!well_formed || !ok) return protocol("malformed list", body);
  if (!saw_items) return protocol("list without items", body);
  return list;
}

Result<WatchEvent> decode_watch_event(std::string_view line) {
  std::string type;
  std::string_view object_text;
  bool ok = true;
  bool well_formed = scan::for_each_member(line, [&](std::string_view key, std::string_view v) {
    if (key == "type") {
      ok = assign_string(v, type);
    } else if (key == "object") {
      object_text = v;
    }
    return ok;
  });
  if (!well_formed || !ok) return protocol("malformed watch event", line);
  if (object_text.empty()) return protocol("watch event without object", line);

  WatchEvent ev;
  if (type == "ADDED") {
    ev.type = EventType::Added;
  } else if (type == "MODIFIED") {
    ev.type = EventType::Modified;
  } else if (type == "DELETED") {
    ev.type = EventType::Deleted;
  } else if (type == "BOOKMARK") {
    ev.type = EventType::Bookmark;
  } else if (type == "ERROR") {
    ev.type = EventType::Error;
  } else {
    return protocol("unknown watch event type \"" + type + "\"", line);
  }
  if (!scan_envelope(object_text, ev.object)) return protocol("malformed watch object", line);
  ev.object.raw.assign(object_text);
  if (ev.type == EventType::Error) ev.error = error_from_status_json(object_text, 500);
  return ev;
}

}  // namespace edgehub::kube

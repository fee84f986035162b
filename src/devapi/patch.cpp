#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/patch.hpp>
#include <map>
#include <string>

namespace edgehub::devapi {

using nlohmann::json;

namespace {

// Merge keys of the Kubernetes types we serve, by field name (the field names are unambiguous
// across the types involved). Lists not named here are replaced, as in Kubernetes.
const std::map<std::string, std::string, std::less<>>& merge_keys() {
  static const std::map<std::string, std::string, std::less<>> keys = {
      {"conditions", "type"},
      {"containers", "name"},
      {"initContainers", "name"},
      {"ephemeralContainers", "name"},
      {"volumes", "name"},
      {"env", "name"},
      {"volumeMounts", "mountPath"},
      {"volumeDevices", "devicePath"},
      {"ports", "containerPort"},
      {"addresses", "type"},
      {"podIPs", "ip"},
      {"hostIPs", "ip"},
      {"imagePullSecrets", "name"},
      {"ownerReferences", "uid"},
      {"resourceClaims", "name"},
      {"secrets", "name"},
  };
  return keys;
}

// Lists of scalars merged as sets.
bool is_primitive_merge_list(std::string_view field) {
  return field == "finalizers";
}

constexpr std::string_view kSetOrder = "$setElementOrder/";
constexpr std::string_view kDeleteFromList = "$deleteFromPrimitiveList/";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Removes directive keys ("$patch", "$setElementOrder/...") from a value added as a whole.
json strip_directives(const json& value) {
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [key, item] : value.items()) {
      if (!key.empty() && key[0] == '$') continue;
      if (item.is_null()) continue;
      out[key] = strip_directives(item);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const auto& item : value) {
      if (item.is_object() && item.value("$patch", "") == "delete") continue;
      out.push_back(strip_directives(item));
    }
    return out;
  }
  return value;
}

json merge_object(json target, const json& patch);

json merge_keyed_list(const json& original, const json& patch, const std::string& key) {
  json result = original.is_array() ? original : json::array();
  for (const auto& item : patch) {
    if (item.is_object() && item.value("$patch", "") == "replace") {
      json replaced = json::array();
      for (const auto& other : patch) {
        if (!(other.is_object() && other.contains("$patch"))) {
          replaced.push_back(strip_directives(other));
        }
      }
      return replaced;
    }
  }
  for (const auto& item : patch) {
    if (!item.is_object() || !item.contains(key)) {
      result.push_back(strip_directives(item));
      continue;
    }
    const json& id = item[key];
    auto it = std::find_if(result.begin(), result.end(), [&](const json& existing) {
      return existing.is_object() && existing.contains(key) && existing[key] == id;
    });
    if (item.value("$patch", "") == "delete") {
      if (it != result.end()) result.erase(it);
      continue;
    }
    if (it != result.end()) {
      *it = merge_object(*it, item);
    } else {
      result.push_back(strip_directives(item));
    }
  }
  return result;
}

json merge_primitive_list(const json& original, const json& patch) {
  json result = original.is_array() ? original : json::array();
  for (const auto& item : patch) {
    if (std::find(result.begin(), result.end(), item) == result.end()) result.push_back(item);
  }
  return result;
}

// Reorders `list` as `order` says; elements `order` does not mention keep their place after.
json apply_element_order(const json& list, const json& order, const std::string& key) {
  if (!list.is_array() || !order.is_array()) return list;
  json sorted = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& want : order) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (used[i]) continue;
      const bool same = key.empty()
                            ? list[i] == want
                            : (want.is_object() && list[i].is_object() && want.contains(key) &&
                               list[i].contains(key) && list[i][key] == want[key]);
      if (same) {
        sorted.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (!used[i]) sorted.push_back(list[i]);
  }
  return sorted;
}

json merge_object(json target, const json& patch) {
  if (!patch.is_object()) return patch;
  if (patch.value("$patch", "") == "replace") return strip_directives(patch);
  if (!target.is_object()) target = json::object();
  for (const auto& [key, value] : patch.items()) {
    if (!key.empty() && key[0] == '$') continue;
    if (value.is_null()) {
      target.erase(key);
    } else if (value.is_object()) {
      if (value.value("$patch", "") == "delete") {
        target.erase(key);
      } else {
        target[key] = merge_object(target.contains(key) ? target[key] : json(), value);
      }
    } else if (value.is_array()) {
      auto mk = merge_keys().find(key);
      if (mk != merge_keys().end()) {
        target[key] =
            merge_keyed_list(target.contains(key) ? target[key] : json(), value, mk->second);
      } else if (is_primitive_merge_list(key)) {
        target[key] = merge_primitive_list(target.contains(key) ? target[key] : json(), value);
      } else {
        target[key] = strip_directives(value);
      }
    } else {
      target[key] = value;
    }
  }
  for (const auto& [key, value] : patch.items()) {
    if (starts_with(key, kDeleteFromList)) {
      const std::string field = key.substr(kDeleteFromList.size());
      if (target.contains(field) && target[field].is_array() && value.is_array()) {
        json kept = json::array();
        for (const auto& item : target[field]) {
          if (std::find(value.begin(), value.end(), item) == value.end()) kept.push_back(item);
        }
        target[field] = kept;
      }
    } else if (starts_with(key, kSetOrder)) {
      const std::string field = key.substr(kSetOrder.size());
      if (target.contains(field)) {
        auto mk = merge_keys().find(field);
        target[field] =
            apply_element_order(target[field], value, mk == merge_keys().end() ? "" : mk->second);
      }
    } else if (key == "$retainKeys" && value.is_array()) {
      json kept = json::object();
      for (const auto& name : value) {
        if (name.is_string() && target.contains(name.get<std::string>())) {
          kept[name.get<std::string>()] = target[name.get<std::string>()];
        }
      }
      target = kept;
    }
  }
  return target;
}

}  // namespace

json apply_merge_patch(json target, const json& patch) {
  target.merge_patch(patch);
  return target;
}

json apply_strategic_merge_patch(json target, const json& patch) {
  if (!patch.is_object()) {
    throw ApiError(422, "Invalid", "the body of a strategic merge patch must be a JSON object",
                   json::object());
  }
  return merge_object(std::move(target), patch);
}

json apply_json_patch(const json& target, const json& patch) {
  if (!patch.is_array()) {
    throw ApiError::bad_request(
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  }
  try {
    return target.patch(patch);
  } catch (const json::exception& e) {
    throw ApiError(422, "Invalid",
                   std::string("the server rejected our request due to an error in our "
                               "request: ") +
                       e.what(),
                   json::object());
  }
}

json apply_patch(PatchType type, json target, const json& patch) {
  switch (type) {
    case PatchType::kMerge:
      return apply_merge_patch(std::move(target), patch);
    case PatchType::kStrategicMerge:
      return apply_strategic_merge_patch(std::move(target), patch);
    case PatchType::kJson:
      return apply_json_patch(target, patch);
  }
  return target;
}

}  // namespace edgehub::devapi

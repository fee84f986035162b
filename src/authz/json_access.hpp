#pragma once
// Reading edge-sent JSON without exceptions: a missing member or a wrong type reads as null
// or empty, which the rules treat as absent.

#include <edgehub/authz/names.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace edgehub::authz::detail {

inline const nlohmann::json& member(const nlohmann::json& j, std::string_view key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

inline std::string text(const nlohmann::json& j) {
  return j.is_string() ? j.get<std::string>() : std::string();
}

// Absent or null, or an empty object/array/string.
inline bool empty(const nlohmann::json& j) {
  return j.is_null() || ((j.is_object() || j.is_array() || j.is_string()) && j.empty());
}

inline std::string shown(std::string_view s) { return printable(s); }

}  // namespace edgehub::authz::detail

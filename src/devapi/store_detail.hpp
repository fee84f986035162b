// Helpers shared by the store's sources (store.cpp: writes, store_read.cpp: list and watch).
#pragma once

#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/resources.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace edgehub::devapi::detail {

using nlohmann::json;

inline std::string object_key(const ResourceInfo& resource, const std::string& ns,
                              const std::string& name) {
  return resource.namespaced ? ns + "/" + name : name;
}

// Key prefix of one namespace ("" for every namespace / cluster scope).
inline std::string scope_prefix(const ResourceInfo& resource, const std::string& ns) {
  return resource.namespaced && !ns.empty() ? ns + "/" : std::string();
}

inline const json& metadata_of(const json& object) {
  static const json empty = json::object();
  auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? *it : empty;
}

inline std::string meta_string(const json& object, const char* field) {
  const json& meta = metadata_of(object);
  auto it = meta.find(field);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline json labels_of(const json& object) {
  const json& meta = metadata_of(object);
  auto it = meta.find("labels");
  return it != meta.end() ? *it : json();
}

inline json invalid_list_options(const std::string& field, const std::string& reason,
                                 const std::string& detail) {
  (void)reason;
  return json::array({{{"reason", reason}, {"message", detail}, {"field", field}}});
}

[[noreturn]] inline void throw_list_options_invalid(const std::string& field,
                                                    const std::string& reason,
                                                    const std::string& detail) {
  const std::string message = "ListOptions.meta.k8s.io \"\" is invalid: " + field + ": " + detail;
  throw ApiError(422, "Invalid", message,
                 json{{"group", "meta.k8s.io"},
                      {"kind", "ListOptions"},
                      {"causes", invalid_list_options(field, reason, detail)}});
}

inline ApiError too_large_rv(std::uint64_t asked, std::uint64_t current) {
  return ApiError(504, "Timeout",
                  "Too large resource version: " + std::to_string(asked) +
                      ", current: " + std::to_string(current),
                  json{{"causes", json::array({{{"reason", "ResourceVersionTooLarge"},
                                                {"message", "Too large resource version"}}})},
                       {"retryAfterSeconds", 1}});
}

}  // namespace edgehub::devapi::detail

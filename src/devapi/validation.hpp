// Create-time validation and defaulting, with the field paths and messages of kube-apiserver.
#pragma once

#include <edgehub/devapi/resources.hpp>
#include <nlohmann/json.hpp>

namespace edgehub::devapi::detail {

// Throws ApiError 422 (Invalid) listing every problem found.
void validate_for_create(const ResourceInfo& resource, const nlohmann::json& object);

// Fills in the defaults clients expect to read back (pod phase, restartPolicy, ...).
void apply_defaults(const ResourceInfo& resource, nlohmann::json& object);

}  // namespace edgehub::devapi::detail

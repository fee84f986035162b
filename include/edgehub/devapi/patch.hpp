// Patch algorithms applied by the devapi store.
#pragma once

#include <nlohmann/json.hpp>

namespace edgehub::devapi {

enum class PatchType { kMerge, kStrategicMerge, kJson };

// RFC 7386 JSON merge patch.
nlohmann::json apply_merge_patch(nlohmann::json target, const nlohmann::json& patch);

// Kubernetes strategic merge patch for the lists the hub and kubectl touch: lists of objects
// with a known merge key (conditions by `type`, containers/volumes/env by `name`, ...) are
// merged element by element; `$patch: delete|replace`, `$setElementOrder/<list>`,
// `$deleteFromPrimitiveList/<list>` and `$retainKeys` are honoured. Other lists are replaced.
nlohmann::json apply_strategic_merge_patch(nlohmann::json target, const nlohmann::json& patch);

// RFC 6902 JSON patch. Throws ApiError 422 when an operation fails.
nlohmann::json apply_json_patch(const nlohmann::json& target, const nlohmann::json& patch);

nlohmann::json apply_patch(PatchType type, nlohmann::json target, const nlohmann::json& patch);

}  // namespace edgehub::devapi

// Discovery documents (/version, /api, /apis, /api/v1, /apis/<g>[/<v>]) for the served types.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edgehub::devapi::detail {

nlohmann::json version_info();
nlohmann::json api_versions(const std::string& server_address);
nlohmann::json api_group_list();
// nullopt when the group (or group/version) is not served.
std::optional<nlohmann::json> api_group(const std::string& group);
std::optional<nlohmann::json> api_resource_list(const std::string& group,
                                                const std::string& version);

}  // namespace edgehub::devapi::detail

namespace edgehub::devapi::detail {

// Minimal OpenAPI v3: the root index and, per group/version, one PATCH operation per kind that
// advertises the `fieldValidation` parameter. That is what kubectl looks for before it leaves
// validation to the server (otherwise it insists on downloading the full OpenAPI v2 schema).
nlohmann::json openapi_v3_root();
std::optional<nlohmann::json> openapi_v3_group_version(const std::string& group,
                                                       const std::string& version);

}  // namespace edgehub::devapi::detail

// Server-side printing: the `meta.k8s.io/v1 Table` kubectl asks for with
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`. Columns and cells follow
// kube-apiserver's printers for the kinds it knows (nodes, pods, leases, configmaps, secrets,
// namespaces), the CRD printer columns for nodesyncs, and NAME AGE for everything else.
#pragma once

#include <chrono>
#include <edgehub/devapi/resources.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::devapi::detail {

enum class IncludeObject { None, Metadata, Object };

// The Table version the Accept header asks for first ("v1" or "v1beta1"), or nullopt when the
// client prefers a plain object (or accepts a Table only after JSON).
std::optional<std::string> table_version_wanted(std::string_view accept);

// `includeObject` query value → enum; empty is Metadata (the API server's default). Throws
// ApiError (400) for anything else.
IncludeObject parse_include_object(std::string_view value);

// A list (`items`) or a single object as a Table. `now` is injected for the Age cells.
nlohmann::json to_table(const ResourceInfo& resource, const nlohmann::json& body, bool is_list,
                        const std::string& version, IncludeObject include,
                        std::chrono::system_clock::time_point now);

// Go's duration.HumanDuration: "45s", "3m20s", "5h2m", "3d4h", "2y".
std::string human_duration(std::chrono::seconds d);

}  // namespace edgehub::devapi::detail

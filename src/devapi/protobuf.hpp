// Just enough of Kubernetes' protobuf encoding to accept the bodies kubectl's generators send
// (`kubectl create namespace|configmap|secret|serviceaccount` post protobuf, not JSON).
#pragma once

#include <edgehub/devapi/resources.hpp>
#include <nlohmann/json.hpp>
#include <string_view>

namespace edgehub::devapi::detail {

// Decodes a "k8s\0"-enveloped protobuf object into its JSON form. Throws ApiError 415 for a
// kind it cannot decode and 400 for a malformed body.
nlohmann::json decode_protobuf_object(std::string_view body, const ResourceInfo& resource);

}  // namespace edgehub::devapi::detail

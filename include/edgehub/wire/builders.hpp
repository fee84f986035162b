#pragma once
// Builders for the replies the protocol needs (KUBEEDGE-WIRE §2.2, §3.3, §4.1).

#include <cstdint>
#include <edgehub/wire/message.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace edgehub::wire {

// Well-known route values.
namespace source {
inline constexpr std::string_view kEdgeController = "edgecontroller";
inline constexpr std::string_view kDeviceController = "devicecontroller";
inline constexpr std::string_view kCloudHub = "cloudhub";
}  // namespace source
namespace group {
inline constexpr std::string_view kResource = "resource";
inline constexpr std::string_view kTwin = "twin";
inline constexpr std::string_view kMeta = "meta";
}  // namespace group
namespace operation {
inline constexpr std::string_view kInsert = "insert";
inline constexpr std::string_view kUpdate = "update";
inline constexpr std::string_view kPatch = "patch";
inline constexpr std::string_view kDelete = "delete";
inline constexpr std::string_view kQuery = "query";
inline constexpr std::string_view kResponse = "response";
inline constexpr std::string_view kError = "error";
inline constexpr std::string_view kKeepalive = "keepalive";
inline constexpr std::string_view kGet = "get";
}  // namespace operation
inline constexpr std::string_view kContentOK = "OK";

// A random (version 4) UUID, as beehive uses for msg_id.
std::string new_message_id();

// Milliseconds since the epoch, for header.timestamp.
std::int64_t now_millis();

// The edge's ACK of a cloud message: operation `response`, content "OK", parent_msg_id = the
// acked msg_id, source/group/resource copied (KUBEEDGE-WIRE §4.1).
Message make_ack(const Message& acked, std::int64_t timestamp);

// A reply to an edge request: parent_msg_id = the request's msg_id, the request's resource,
// `response` operation. `content_json` is raw JSON text.
Message make_response(const Message& request, std::string content_json,
                      std::string_view source = source::kEdgeController,
                      std::string_view group = group::kResource,
                      std::string resource_version = {}, std::int64_t timestamp = 0);

// {"Object":<object or null>,"Err":null} — both keys always present (KUBEEDGE-WIRE §2.2).
std::string object_resp(std::string_view object_json, std::string_view err_json = "null");

// Go's rendering of *apierrors.StatusError:
// {"ErrStatus":{"metadata":{},"status":"Failure","message":…,"reason":…,"details":{…},"code":…}}
struct StatusErrorFields {
  std::string reason;   // NotFound, AlreadyExists, Forbidden, ...
  int code = 500;
  std::string message;
  std::string name;     // details.name, omitted if empty
  std::string group;    // details.group, omitted if empty
  std::string kind;     // details.kind, omitted if empty
};
std::string status_error(const StatusErrorFields& fields);
// The same from a Kubernetes metav1.Status object (as returned by kube-apiserver).
std::string status_error_from_status(const nlohmann::json& status);

// Whether a cloud->edge message needs the edge's ACK (cloudcore's noAckRequired, §4.1).
bool needs_ack(const Message& message);

}  // namespace edgehub::wire

#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/resources.hpp>

namespace edgehub::devapi {

namespace {
nlohmann::json resource_details(const ResourceInfo& resource, const std::string& name) {
  nlohmann::json details = nlohmann::json::object();
  if (!name.empty()) details["name"] = name;
  if (!resource.group.empty()) details["group"] = resource.group;
  details["kind"] = resource.resource;
  return details;
}
}  // namespace

ApiError::ApiError(int code, std::string reason, const std::string& message, nlohmann::json details)
    : std::runtime_error(message),
      code_(code),
      reason_(std::move(reason)),
      details_(std::move(details)) {}

nlohmann::json ApiError::status() const {
  nlohmann::json status = {
      {"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
      {"status", "Failure"}, {"message", what()},  {"reason", reason_},
      {"code", code_}};
  if (!details_.is_null()) status["details"] = details_;
  return status;
}

ApiError ApiError::bad_request(const std::string& message) {
  return {400, "BadRequest", message};
}

ApiError ApiError::not_found(const ResourceInfo& resource, const std::string& name) {
  return {404, "NotFound", resource.qualified_name() + " \"" + name + "\" not found",
          resource_details(resource, name)};
}

ApiError ApiError::already_exists(const ResourceInfo& resource, const std::string& name) {
  return {409, "AlreadyExists", resource.qualified_name() + " \"" + name + "\" already exists",
          resource_details(resource, name)};
}

ApiError ApiError::conflict(const ResourceInfo& resource, const std::string& name,
                            const std::string& why) {
  return {
      409, "Conflict",
      "Operation cannot be fulfilled on " + resource.qualified_name() + " \"" + name + "\": " + why,
      resource_details(resource, name)};
}

ApiError ApiError::stale_resource_version(const ResourceInfo& resource, const std::string& name) {
  return conflict(resource, name,
                  "the object has been modified; please apply your changes to the latest "
                  "version and try again");
}

ApiError ApiError::invalid(const std::string& kind, const std::string& name,
                           const nlohmann::json& causes, const std::string& group) {
  std::string message =
      kind + (group.empty() ? "" : "." + group) + " \"" + name + "\" is invalid: ";
  std::string joined;
  for (const auto& cause : causes) {
    if (!joined.empty()) joined += ", ";
    joined += cause.value("field", "") + ": " + cause.value("message", "");
  }
  message += causes.size() > 1 ? "[" + joined + "]" : joined;
  nlohmann::json details = nlohmann::json::object();
  if (!name.empty()) details["name"] = name;
  if (!group.empty()) details["group"] = group;
  details["kind"] = kind;
  details["causes"] = causes;
  return {422, "Invalid", message, details};
}

ApiError ApiError::unknown_resource() {
  return {404, "NotFound", "the server could not find the requested resource",
          nlohmann::json::object()};
}

ApiError ApiError::method_not_allowed() {
  return {405, "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
          nlohmann::json::object()};
}

ApiError ApiError::unauthorized() {
  return {401, "Unauthorized", "Unauthorized"};
}

ApiError ApiError::expired(const std::string& message) {
  return {410, "Expired", message};
}

ApiError ApiError::unsupported_media_type(const std::string& content_type) {
  return {415, "UnsupportedMediaType",
          "the body of the request was in an unknown format - accepted media types include: "
          "application/json-patch+json, application/merge-patch+json, "
          "application/strategic-merge-patch+json (got \"" +
              content_type + "\")",
          nlohmann::json::object()};
}

ApiError ApiError::internal(const std::string& message) {
  return {500, "InternalError", "Internal error occurred: " + message,
          nlohmann::json{{"causes", nlohmann::json::array({{{"message", message}}})}}};
}

nlohmann::json success_status(const ResourceInfo& resource, const std::string& name,
                              const std::string& uid) {
  nlohmann::json details = resource_details(resource, name);
  if (!uid.empty()) details["uid"] = uid;
  return {{"kind", "Status"},
          {"apiVersion", "v1"},
          {"metadata", nlohmann::json::object()},
          {"status", "Success"},
          {"details", details}};
}

}  // namespace edgehub::devapi

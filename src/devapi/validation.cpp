#include "validation.hpp"

#include <edgehub/devapi/api_error.hpp>
#include <string>

namespace edgehub::devapi::detail {

using nlohmann::json;

namespace {

bool is_alnum_lower(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool is_dns_label(std::string_view s, std::size_t max = 63) {
  if (s.empty() || s.size() > max) return false;
  if (!is_alnum_lower(s.front()) || !is_alnum_lower(s.back())) return false;
  for (char c : s) {
    if (!is_alnum_lower(c) && c != '-') return false;
  }
  return true;
}

bool is_dns_subdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (start <= s.size()) {
    const std::size_t dot = s.find('.', start);
    const auto part = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (!is_dns_label(part, 253)) return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

constexpr const char* kSubdomainMessage =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
constexpr const char* kLabelMessage =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

json cause(const std::string& reason, const std::string& message, const std::string& field) {
  return {{"reason", reason}, {"message", message}, {"field", field}};
}

}  // namespace

void validate_for_create(const ResourceInfo& resource, const json& object) {
  json causes = json::array();
  const json& meta = object.at("metadata");
  const std::string name = meta.value("name", "");
  if (name.empty()) {
    causes.push_back(cause("FieldValueRequired", "Required value: name or generateName is required",
                           "metadata.name"));
  } else {
    const bool label_only = resource.resource == "namespaces";
    const bool ok = label_only ? is_dns_label(name) : is_dns_subdomain(name);
    if (!ok) {
      causes.push_back(cause(
          "FieldValueInvalid",
          "Invalid value: \"" + name + "\": " + (label_only ? kLabelMessage : kSubdomainMessage),
          "metadata.name"));
    }
  }
  if (resource.resource == "pods") {
    const json* containers = nullptr;
    if (object.contains("spec") && object["spec"].is_object() &&
        object["spec"].contains("containers")) {
      containers = &object["spec"]["containers"];
    }
    if (containers == nullptr || !containers->is_array() || containers->empty()) {
      causes.push_back(cause("FieldValueRequired", "Required value", "spec.containers"));
    } else {
      for (std::size_t i = 0; i < containers->size(); ++i) {
        const json& c = (*containers)[i];
        const std::string path = "spec.containers[" + std::to_string(i) + "]";
        if (!c.is_object() || c.value("name", "").empty()) {
          causes.push_back(cause("FieldValueRequired", "Required value", path + ".name"));
        }
        if (!c.is_object() || c.value("image", "").empty()) {
          causes.push_back(cause("FieldValueRequired", "Required value", path + ".image"));
        }
      }
    }
  }
  if (!causes.empty()) throw ApiError::invalid(resource.kind, name, causes, resource.group);
}

void apply_defaults(const ResourceInfo& resource, json& object) {
  if (resource.resource == "pods") {
    json& spec = object["spec"];
    if (!spec.contains("restartPolicy")) spec["restartPolicy"] = "Always";
    if (!spec.contains("terminationGracePeriodSeconds")) spec["terminationGracePeriodSeconds"] = 30;
    if (!spec.contains("dnsPolicy")) spec["dnsPolicy"] = "ClusterFirst";
    if (!spec.contains("schedulerName")) spec["schedulerName"] = "default-scheduler";
    if (spec.contains("containers") && spec["containers"].is_array()) {
      for (auto& c : spec["containers"]) {
        if (!c.is_object()) continue;
        if (!c.contains("terminationMessagePath")) {
          c["terminationMessagePath"] = "/dev/termination-log";
        }
        if (!c.contains("terminationMessagePolicy")) c["terminationMessagePolicy"] = "File";
        if (!c.contains("imagePullPolicy")) {
          const std::string image = c.value("image", "");
          const auto slash = image.rfind('/');
          const auto colon = image.rfind(':');
          const bool tagged =
              colon != std::string::npos && (slash == std::string::npos || colon > slash);
          const bool latest = !tagged || image.substr(colon + 1) == "latest";
          c["imagePullPolicy"] = latest ? "Always" : "IfNotPresent";
        }
      }
    }
    json& status = object["status"];
    if (!status.is_object()) status = json::object();
    if (!status.contains("phase")) status["phase"] = "Pending";
  } else if (resource.resource == "namespaces") {
    json& meta = object["metadata"];
    meta["labels"]["kubernetes.io/metadata.name"] = meta.value("name", "");
    if (!object.contains("spec")) object["spec"] = {{"finalizers", json::array({"kubernetes"})}};
    object["status"] = {{"phase", "Active"}};
  } else if (resource.resource == "secrets") {
    if (object.value("type", "").empty()) object["type"] = "Opaque";
  }
}

}  // namespace edgehub::devapi::detail

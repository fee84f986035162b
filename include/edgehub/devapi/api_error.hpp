// Kubernetes-shaped API errors: every failure the devapi server reports is an ApiError that
// renders as the `Status` object a real kube-apiserver sends for the same mistake.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace edgehub::devapi {

struct ResourceInfo;

class ApiError : public std::runtime_error {
 public:
  // details: the Status `details` member; null means "omit it", {} means an empty object.
  ApiError(int code, std::string reason, const std::string& message,
           nlohmann::json details = nullptr);

  int code() const { return code_; }
  const std::string& reason() const { return reason_; }
  const nlohmann::json& details() const { return details_; }

  // The full `Status` object ({"kind":"Status","apiVersion":"v1",...}).
  nlohmann::json status() const;

  static ApiError bad_request(const std::string& message);
  static ApiError not_found(const ResourceInfo& resource, const std::string& name);
  static ApiError already_exists(const ResourceInfo& resource, const std::string& name);
  static ApiError conflict(const ResourceInfo& resource, const std::string& name,
                           const std::string& why);
  // "the object has been modified; please apply your changes to the latest version..."
  static ApiError stale_resource_version(const ResourceInfo& resource, const std::string& name);
  // causes: array of {"reason","message","field"}.
  static ApiError invalid(const std::string& kind, const std::string& name,
                          const nlohmann::json& causes, const std::string& group = "");
  static ApiError unknown_resource();
  static ApiError method_not_allowed();
  static ApiError unauthorized();
  static ApiError expired(const std::string& message);
  static ApiError unsupported_media_type(const std::string& content_type);
  static ApiError internal(const std::string& message);

 private:
  int code_;
  std::string reason_;
  nlohmann::json details_;
};

// A Status for a successful delete: {"status":"Success","details":{name,kind,uid}}.
nlohmann::json success_status(const ResourceInfo& resource, const std::string& name,
                              const std::string& uid);

}  // namespace edgehub::devapi

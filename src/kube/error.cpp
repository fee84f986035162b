#include <edgehub/kube/error.hpp>

#include <edgehub/wire/json_safe.hpp>
#include <nlohmann/json.hpp>

#include <charconv>
#include <ostream>
#include <stdexcept>

namespace edgehub::kube {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::BadRequest: return "BadRequest";
    case ErrorKind::Unauthorized: return "Unauthorized";
    case ErrorKind::Forbidden: return "Forbidden";
    case ErrorKind::NotFound: return "NotFound";
    case ErrorKind::MethodNotAllowed: return "MethodNotAllowed";
    case ErrorKind::AlreadyExists: return "AlreadyExists";
    case ErrorKind::Conflict: return "Conflict";
    case ErrorKind::Gone: return "Gone";
    case ErrorKind::Invalid: return "Invalid";
    case ErrorKind::TooManyRequests: return "TooManyRequests";
    case ErrorKind::Timeout: return "Timeout";
    case ErrorKind::Internal: return "Internal";
    case ErrorKind::ServiceUnavailable: return "ServiceUnavailable";
    case ErrorKind::UnexpectedStatus: return "UnexpectedStatus";
    case ErrorKind::ConnectFailed: return "ConnectFailed";
    case ErrorKind::TlsFailure: return "TlsFailure";
    case ErrorKind::TransportTimeout: return "TransportTimeout";
    case ErrorKind::StreamBroken: return "StreamBroken";
    case ErrorKind::Protocol: return "Protocol";
    case ErrorKind::Config: return "Config";
    case ErrorKind::Cancelled: return "Cancelled";
  }
  return "Unknown";
}

std::ostream& operator<<(std::ostream& os, ErrorKind kind) { return os << to_string(kind); }

std::string Error::describe() const {
  std::string out(to_string(kind));
  if (http_status != 0) out += " (" + std::to_string(http_status) + ")";
  if (!message.empty()) out += ": " + message;
  if (retry_after) out += " [retry after " + std::to_string(retry_after->count()) + "s]";
  return out;
}

Error make_error(ErrorKind kind, std::string message) {
  Error e;
  e.kind = kind;
  e.message = std::move(message);
  return e;
}

namespace {

ErrorKind kind_from_code(int code) {
  switch (code) {
    case 400: return ErrorKind::BadRequest;
    case 401: return ErrorKind::Unauthorized;
    case 403: return ErrorKind::Forbidden;
    case 404: return ErrorKind::NotFound;
    case 405: return ErrorKind::MethodNotAllowed;
    case 409: return ErrorKind::Conflict;
    case 410: return ErrorKind::Gone;
    case 422: return ErrorKind::Invalid;
    case 429: return ErrorKind::TooManyRequests;
    case 500: return ErrorKind::Internal;
    case 503: return ErrorKind::ServiceUnavailable;
    case 504: return ErrorKind::Timeout;
    default: return ErrorKind::UnexpectedStatus;
  }
}

std::optional<ErrorKind> kind_from_reason(std::string_view reason) {
  if (reason == "BadRequest") return ErrorKind::BadRequest;
  if (reason == "Unauthorized") return ErrorKind::Unauthorized;
  if (reason == "Forbidden") return ErrorKind::Forbidden;
  if (reason == "NotFound") return ErrorKind::NotFound;
  if (reason == "MethodNotAllowed") return ErrorKind::MethodNotAllowed;
  if (reason == "AlreadyExists") return ErrorKind::AlreadyExists;
  if (reason == "Conflict") return ErrorKind::Conflict;
  if (reason == "Gone" || reason == "Expired") return ErrorKind::Gone;
  if (reason == "Invalid") return ErrorKind::Invalid;
  if (reason == "TooManyRequests") return ErrorKind::TooManyRequests;
  if (reason == "Timeout" || reason == "ServerTimeout") return ErrorKind::Timeout;
  if (reason == "InternalError") return ErrorKind::Internal;
  if (reason == "ServiceUnavailable") return ErrorKind::ServiceUnavailable;
  return std::nullopt;
}

std::optional<std::chrono::seconds> parse_seconds(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  long long v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p == text.data() || v < 0) return std::nullopt;
  return std::chrono::seconds(v);
}

// Fills `e` from a Status object; returns false when `j` is not one.
bool apply_status(const nlohmann::json& j, Error& e) {
  if (!j.is_object()) return false;
  auto kind = j.find("kind");
  if (kind == j.end() || !kind->is_string() || kind->get_ref<const std::string&>() != "Status") {
    return false;
  }
  if (auto it = j.find("code"); it != j.end() && it->is_number_integer() && e.http_status == 0) {
    e.http_status = it->get<int>();
  }
  if (auto it = j.find("reason"); it != j.end() && it->is_string()) e.reason = it->get<std::string>();
  if (auto it = j.find("message"); it != j.end() && it->is_string()) {
    e.message = it->get<std::string>();
  }
  if (auto d = j.find("details"); d != j.end() && d->is_object()) {
    if (auto r = d->find("retryAfterSeconds"); r != d->end() && r->is_number_integer()) {
      e.retry_after = std::chrono::seconds(r->get<long long>());
    }
  }
  e.kind = kind_from_reason(e.reason).value_or(kind_from_code(e.http_status));
  return true;
}

std::string excerpt(std::string_view body) {
  constexpr std::size_t kMax = 200;
  std::string out(body.substr(0, kMax));
  for (auto& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (body.size() > kMax) out += "...";
  return out;
}

}  // namespace

Error error_from_response(int http_status, std::string_view body,
                          std::string_view retry_after_header) {
  Error e;
  e.http_status = http_status;
  e.kind = kind_from_code(http_status);
  auto j = wire::parse_json_bounded(body, wire::kMaxApiJsonDepth);
  if (!apply_status(j, e)) {
    e.message = "HTTP " + std::to_string(http_status) + " with a body that is not a Status";
    if (!body.empty()) e.message += ": " + excerpt(body);
  }
  e.http_status = http_status;  // the transport's code wins over Status.code
  if (!retry_after_header.empty()) {
    if (auto s = parse_seconds(retry_after_header)) e.retry_after = s;
  }
  return e;
}

Error error_from_status_json(std::string_view status_json, int fallback_http_status) {
  Error e;
  auto j = wire::parse_json_bounded(status_json, wire::kMaxApiJsonDepth);
  if (!apply_status(j, e)) {
    e.http_status = fallback_http_status;
    e.kind = kind_from_code(fallback_http_status);
    e.message = "watch ERROR event without a Status object: " + excerpt(status_json);
  }
  return e;
}

void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw std::runtime_error("kube: " + e.describe());
}

}  // namespace edgehub::kube

#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::kube {

// What went wrong, coarse enough to act on: the first group comes from an API `Status`
// (or the HTTP code when the body is not a Status), the second from the transport.
enum class ErrorKind {
  BadRequest,          // 400
  Unauthorized,        // 401
  Forbidden,           // 403
  NotFound,            // 404
  MethodNotAllowed,    // 405
  AlreadyExists,       // 409, reason AlreadyExists
  Conflict,            // 409, reason Conflict (stale resourceVersion)
  Gone,                // 410, reason Expired or Gone: relist
  Invalid,             // 422
  TooManyRequests,     // 429, retry_after set when the server said so
  Timeout,             // 504 / reason Timeout or ServerTimeout
  Internal,            // 500
  ServiceUnavailable,  // 503
  UnexpectedStatus,    // any other non-2xx code
  ConnectFailed,       // resolve/connect refused or unreachable
  TlsFailure,          // handshake or certificate verification failed
  TransportTimeout,    // connect or request deadline passed
  StreamBroken,        // connection lost mid-response or mid-watch
  Protocol,            // malformed HTTP or JSON from the server
  Config,              // kubeconfig / in-cluster configuration problem
  Cancelled,           // the caller stopped the operation
};

std::string_view to_string(ErrorKind kind) noexcept;
std::ostream& operator<<(std::ostream& os, ErrorKind kind);

struct Error {
  ErrorKind kind = ErrorKind::Internal;
  int http_status = 0;   // 0 for transport and config errors
  std::string reason;    // Status.reason as sent ("NotFound", "Expired", ...)
  std::string message;   // Status.message, or a description of the failure
  std::optional<std::chrono::seconds> retry_after;

  // One line for logs: "NotFound (404): pods \"x\" not found".
  std::string describe() const;
  bool is(ErrorKind k) const noexcept { return kind == k; }
};

Error make_error(ErrorKind kind, std::string message);

// Builds the typed error for a non-2xx answer. `body` is whatever the server sent; when it is
// a `Status` its reason/message/code are used, otherwise the HTTP code decides.
Error error_from_response(int http_status, std::string_view body,
                          std::string_view retry_after_header = {});

// Maps a `Status` object already parsed (e.g. the object of a watch ERROR event).
Error error_from_status_json(std::string_view status_json, int fallback_http_status);

template <class T>
using Result = boost::system::result<T, Error>;

// Needed by boost::system::result<T, Error>::value(); the client itself never calls it.
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

}  // namespace edgehub::kube

#pragma once
// Plain-HTTP requests to loopback services of the e2e cluster (replica admin ports, the
// simulator's state port): one connection per request, a deadline on each.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace edgehub::e2e {

struct HttpResult {
  int status = 0;
  std::string body;
};

// nullopt when the connection or the exchange failed (e.g. the process is not up).
std::optional<HttpResult> http_request(const std::string& method, std::uint16_t port,
                                       const std::string& target,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
inline std::optional<HttpResult> http_get(std::uint16_t port, const std::string& target) {
  return http_request("GET", port, target);
}

// A loopback port that was free a moment ago (bound to port 0, then closed).

}  // namespace edgehub::e2e

// The admin port (metrics.listen, plain HTTP, reachable without credentials): a request as
// net::HttpServer parses it (16 KiB of headers, 1 MiB of body), then the admin routes of
// src/hub/hub.cpp (Hub::Impl::start_admin). Those run inside a whole Hub (threads, API
// watches), so this mirrors their request handling and the JSON they build from it: keep it in
// step with hub.cpp. /metrics is the real registry's exposition.

#include <edgehub/metrics/metrics.hpp>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "http_request.hpp"

namespace {

edgehub::metrics::Registry& registry() {
  static edgehub::metrics::Registry r;
  return r;
}

// Hub::Impl::debug_node(): the node name from the query goes into the JSON answer.
std::string debug_node(const std::string& node) {
  nlohmann::json body = {{"replica", "hub-0"}, {"node", node}};
  body["session"] = nullptr;
  return body.dump(2) + "\n";
}

std::string admin(const edgehub::net::HttpRequest& request) {
  if (request.path == "/metrics") return registry().expose();
  if (request.path == "/healthz" || request.path == "/readyz") return "ok\n";
  if (request.path == "/debug/nodes") {
    const std::string_view prefix = "node=";
    if (request.query.starts_with(prefix)) return debug_node(request.query.substr(prefix.size()));
    return nlohmann::json{{"replica", "hub-0"}, {"nodes", nlohmann::json::array()}}.dump(2);
  }
  return "no such path: " + request.path + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto message = edgehub::fuzz::parse_request(bytes,
                                              {.header_bytes = 16 * 1024, .body_bytes = 1 << 20});
  if (!message) return 0;
  const auto request = edgehub::fuzz::server_request(std::move(*message));
  (void)edgehub::fuzz::header(request, "Host");
  (void)admin(request);
  return 0;
}

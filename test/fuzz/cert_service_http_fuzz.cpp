// The certificate service (:10002, reachable by anyone through the Ingress): a request as
// net::HttpServer parses it (16 KiB of headers, hub.certService's 64 KiB of CSR), then the
// routes of src/pki/cert_service.cpp. CertService binds a port and signs on its own threads,
// so this mirrors CertService::Impl::edge_crt and ::node step by step with the real
// verify_jwt and sign_node_csr (fixed CA, fixed clock): keep it in step with cert_service.cpp.

#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "fuzz_ca.hpp"
#include "http_request.hpp"

namespace {

using edgehub::fuzz::authority;
using edgehub::fuzz::kNow;
using edgehub::net::HttpRequest;

unsigned edge_crt(const HttpRequest& r) {
  const auto node = edgehub::fuzz::header(r, "NodeName");
  if (node.empty()) return 400;
  const auto authorization = edgehub::fuzz::header(r, "Authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (!authorization.starts_with(kBearer)) return 401;
    auto checked = edgehub::pki::verify_jwt(
        authority(), std::string_view(authorization).substr(kBearer.size()), kNow);
    if (!checked) return 401;
  } else {
    return 401;  // rotation needs a verified client certificate; none over this seam
  }
  edgehub::pki::NodeCsrOptions options;
  if (const auto usages = edgehub::fuzz::header(r, "ExtKeyUsages"); !usages.empty()) {
    const auto parsed = nlohmann::json::parse(usages, nullptr, false);
    if (!parsed.is_array()) return 400;
    for (const auto& u : parsed) {
      if (!u.is_number_integer()) return 400;
      options.ext_key_usages.push_back(u.get<int>());
    }
  }
  auto issued = edgehub::pki::sign_node_csr(authority(), r.message.body(), node, options);
  return issued ? 200 : static_cast<unsigned>(issued.error().http_status);
}

unsigned node(const HttpRequest& r) {
  const auto name = r.path.substr(std::string_view("/node/").size());
  if (name.empty() || name.find('/') != std::string::npos) return 400;
  return 404;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto message = edgehub::fuzz::parse_request(bytes,
                                              {.header_bytes = 16 * 1024, .body_bytes = 64 * 1024});
  if (!message) return 0;
  const auto request = edgehub::fuzz::server_request(std::move(*message));
  if (request.path == "/ca.crt") return 0;
  if (request.path == "/edge.crt") {
    (void)edge_crt(request);
  } else if (request.path.starts_with("/node/")) {
    (void)node(request);
  }
  return 0;
}

// The embedded API server (devapi): the input is a stream of pipelined HTTP requests, each
// read by Beast's request_parser under the server's limits (Beast's 8 KiB of headers, 64 MiB
// of body) and answered by detail::Api::handle, the server's socket-free request → response
// step, against an in-memory store that starts empty for each input.

#include <edgehub/devapi/server.hpp>
#include <edgehub/devapi/store.hpp>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "api.hpp"
#include "http_request.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);  // Api::handle logs every internal error
    return true;
  }();
  (void)quiet;
  static const edgehub::devapi::ServerOptions options;
  edgehub::devapi::Store store(/*history_limit=*/16);
  edgehub::devapi::detail::Api api(store, options);
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A few requests per input: enough to create an object and then change or watch it.
  for (int i = 0; i < 8; ++i) {
    auto request = edgehub::fuzz::parse_request(bytes, {.header_bytes = 8 * 1024,
                                                        .body_bytes = 64 * 1024 * 1024});
    if (!request) break;
    (void)api.handle(*request, "127.0.0.1:6443");
  }
  return 0;
}

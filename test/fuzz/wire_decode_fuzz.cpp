// The wire decoder on one WebSocket payload, then every accessor the hub calls on a decoded
// message (src/hub/upstream.cpp, device_upstream.cpp): the content as JSON and as a string, the
// route's resource, and the encoder that echoes messages back to the edge.

#include <edgehub/wire/message.hpp>
#include <edgehub/wire/resource.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  auto decoded = edgehub::wire::decode(payload);
  if (!decoded) {
    // Every refusal names a reason; an empty message would leave the log line blank.
    if (decoded.error().message.empty()) std::abort();
    return 0;
  }
  const edgehub::wire::Message& message = *decoded;
  const nlohmann::json content = message.content_json();
  if (!content.is_discarded()) (void)content.dump();
  if (auto text = message.content_string()) {
    // Strings that hold JSON (patches, event bodies) are parsed again by the handlers.
    const auto inner = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!inner.is_discarded()) (void)inner.dump();
  }
  (void)edgehub::wire::parse_resource(message.route.resource);
  // What the hub encodes must decode again to the same route (responses echo it).
  const std::string encoded = edgehub::wire::encode(message);
  auto again = edgehub::wire::decode(encoded);
  if (!again || again->route.resource != message.route.resource ||
      again->header.msg_id != message.header.msg_id || again->content != message.content) {
    std::abort();
  }
  return 0;
}

#pragma once
// The KubeEdge cloud<->edge message (beehive model.Message) as it travels on the
// WebSocket lane: compact JSON, `header`/`route`/`content` (KUBEEDGE-WIRE §2).
//
// `content` is kept as the raw JSON text of the value (`"OK"`, `null`, `{...}`): the hub
// forwards API objects to the edge verbatim and patches from the edge to the API verbatim,
// so the hot path never re-serialises a 4 KB pod. Parse it on demand with content_json().

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::wire {

struct Header {
  std::string msg_id;
  std::string parent_msg_id;   // set on responses and ACKs
  std::int64_t timestamp = 0;  // milliseconds since the epoch; a JSON integer on the wire
  std::string resource_version;
  bool sync = false;
  std::string type;
};

struct Route {
  std::string source;
  std::string destination;
  std::string group;
  std::string operation;
  std::string resource;
};

struct Message {
  Header header;
  Route route;
  std::string content = "null";  // raw JSON text of the content value

  // The content as a string if it is a JSON string ("OK", "ping", a JSON patch), else nullopt.
  std::optional<std::string> content_string() const;
  // The content parsed; a discarded value (is_discarded()) if it is not valid JSON.
  nlohmann::json content_json() const;
  void set_content(const nlohmann::json& value) { content = value.dump(); }
  void set_content_string(std::string_view text);
};

enum class DecodeErrc {
  too_large,     // payload over DecodeLimits::max_bytes
  too_deep,      // nesting over DecodeLimits::max_depth
  not_json,      // syntax error
  not_object,    // top-level value is not an object
  missing_field, // `header` or `route` absent
  wrong_type,    // a field has the wrong JSON type
  bad_timestamp, // timestamp is not an integer
};

struct DecodeError {
  DecodeErrc code;
  std::string field;    // e.g. "header.timestamp"; empty when not about one field
  std::string message;  // human readable, names the field and the offset
};

std::string_view to_string(DecodeErrc code);

struct DecodeLimits {
  std::size_t max_bytes = 8 * 1024 * 1024;
  int max_depth = 64;
};

// Decodes one message from a WebSocket text or binary payload. Trailing white space (Go's
// encoder ends every payload with '\n') is accepted. Never throws.
boost::system::result<Message, DecodeError> decode(std::string_view payload,
                                                   const DecodeLimits& limits = {});

// Encodes compactly in cloudcore's key order, integer timestamp, raw content, ending in '\n'
// as Go's encoder does (KUBEEDGE-WIRE §10.1).
std::string encode(const Message& message);
void encode_to(const Message& message, std::string& out);

}  // namespace edgehub::wire

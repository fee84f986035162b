#include <edgehub/wire/json_safe.hpp>
#include <edgehub/wire/message.hpp>

#include <functional>

#include "json_reader.hpp"

namespace edgehub::wire {

using detail::JsonReader;

std::string_view to_string(DecodeErrc code) {
  switch (code) {
    case DecodeErrc::too_large: return "too_large";
    case DecodeErrc::too_deep: return "too_deep";
    case DecodeErrc::not_json: return "not_json";
    case DecodeErrc::not_object: return "not_object";
    case DecodeErrc::missing_field: return "missing_field";
    case DecodeErrc::wrong_type: return "wrong_type";
    case DecodeErrc::bad_timestamp: return "bad_timestamp";
  }
  return "unknown";
}

namespace {

class Decoder {
 public:
  Decoder(std::string_view payload, const DecodeLimits& limits)
      : reader_(payload, limits.max_depth) {}

  boost::system::result<Message, DecodeError> run();

 private:
  DecodeError error(DecodeErrc code, std::string field, std::string_view what) {
    std::string message = field.empty() ? std::string(what) : field + ": " + std::string(what);
    if (!reader_.error().empty()) message += " (" + reader_.error() + ")";
    message += " at byte " + std::to_string(reader_.offset());
    if (reader_.too_deep()) code = DecodeErrc::too_deep;
    return DecodeError{code, std::move(field), std::move(message)};
  }
  // Reads a string field; JSON null leaves it empty, as Go's decoder does.
  bool string_field(std::string& out) {
    reader_.skip_ws();
    if (reader_.peek() == 'n') return reader_.read_literal("null");
    if (reader_.peek() != '"') return false;
    return reader_.read_string(&out);
  }
  std::optional<DecodeError> object(std::string_view name,
                                    const std::function<std::optional<DecodeError>(
                                        const std::string& key)>& on_key);
  std::optional<DecodeError> header_key(const std::string& key, Header& header);
  std::optional<DecodeError> route_key(const std::string& key, Route& route);

  JsonReader reader_;
};

std::optional<DecodeError> Decoder::object(
    std::string_view name,
    const std::function<std::optional<DecodeError>(const std::string& key)>& on_key) {
  if (!reader_.consume('{')) return error(DecodeErrc::wrong_type, std::string(name), "not an object");
  if (reader_.consume('}')) return std::nullopt;
  std::string key;
  for (;;) {
    reader_.skip_ws();
    if (!reader_.read_string(&key)) return error(DecodeErrc::not_json, std::string(name), "bad key");
    if (!reader_.consume(':')) return error(DecodeErrc::not_json, std::string(name), "expected ':'");
    if (auto failed = on_key(key)) return failed;
    if (reader_.consume(',')) continue;
    if (reader_.consume('}')) return std::nullopt;
    return error(DecodeErrc::not_json, std::string(name), "expected ',' or '}'");
  }
}

std::optional<DecodeError> Decoder::header_key(const std::string& key, Header& header) {
  std::string* text = nullptr;
  if (key == "msg_id") {
    text = &header.msg_id;
  } else if (key == "parent_msg_id") {
    text = &header.parent_msg_id;
  } else if (key == "resourceversion") {
    text = &header.resource_version;
  } else if (key == "type") {
    text = &header.type;
  } else if (key == "timestamp") {
    reader_.skip_ws();
    if (reader_.peek() == 'n' && reader_.read_literal("null")) return std::nullopt;
    if (!reader_.read_int64(header.timestamp)) {
      return error(DecodeErrc::bad_timestamp, "header.timestamp", "not an integer");
    }
    return std::nullopt;
  } else if (key == "sync") {
    reader_.skip_ws();
    if (reader_.peek() == 't' && reader_.read_literal("true")) {
      header.sync = true;
    } else if (!((reader_.peek() == 'f' && reader_.read_literal("false")) ||
                 (reader_.peek() == 'n' && reader_.read_literal("null")))) {
      return error(DecodeErrc::wrong_type, "header.sync", "not a boolean");
    }
    return std::nullopt;
  } else {
    if (!reader_.skip_value(2)) return error(DecodeErrc::not_json, "header." + key, "bad value");
    return std::nullopt;
  }
  if (!string_field(*text)) return error(DecodeErrc::wrong_type, "header." + key, "not a string");
  return std::nullopt;
}

std::optional<DecodeError> Decoder::route_key(const std::string& key, Route& route) {
  std::string* text = nullptr;
  if (key == "source") {
    text = &route.source;
  } else if (key == "destination") {
    text = &route.destination;
  } else if (key == "group") {
    text = &route.group;
  } else if (key == "operation") {
    text = &route.operation;
  } else if (key == "resource") {
    text = &route.resource;
  } else {
    if (!reader_.skip_value(2)) return error(DecodeErrc::not_json, "route." + key, "bad value");
    return std::nullopt;
  }
  if (!string_field(*text)) return error(DecodeErrc::wrong_type, "route." + key, "not a string");
  return std::nullopt;
}

boost::system::result<Message, DecodeError> Decoder::run() {
  Message message;
  bool have_header = false;
  bool have_route = false;
  reader_.skip_ws();
  if (reader_.peek() != '{') {
    if (reader_.skip_value(0)) {
      reader_.skip_ws();
      if (reader_.at_end()) return error(DecodeErrc::not_object, "", "message is not a JSON object");
    }
    return error(DecodeErrc::not_json, "", "message is not JSON");
  }
  auto failed = object("message", [&](const std::string& key) -> std::optional<DecodeError> {
    reader_.skip_ws();
    const bool is_null = reader_.peek() == 'n';
    if (key == "header") {
      if (is_null) return reader_.read_literal("null") ? std::nullopt : std::optional(error(DecodeErrc::not_json, "header", "bad value"));
      have_header = true;
      return object("header", [&](const std::string& k) { return header_key(k, message.header); });
    }
    if (key == "route") {
      if (is_null) return reader_.read_literal("null") ? std::nullopt : std::optional(error(DecodeErrc::not_json, "route", "bad value"));
      have_route = true;
      return object("route", [&](const std::string& k) { return route_key(k, message.route); });
    }
    const char* start = reader_.position();
    if (!reader_.skip_value(1)) return error(DecodeErrc::not_json, key, "bad value");
    if (key == "content") message.content.assign(start, reader_.position());
    return std::nullopt;
  });
  if (failed) return *failed;
  reader_.skip_ws();
  if (!reader_.at_end()) return error(DecodeErrc::not_json, "", "data after the message");
  if (!have_header) return error(DecodeErrc::missing_field, "header", "missing");
  if (!have_route) return error(DecodeErrc::missing_field, "route", "missing");
  return message;
}

}  // namespace

boost::system::result<Message, DecodeError> decode(std::string_view payload,
                                                   const DecodeLimits& limits) {
  if (payload.size() > limits.max_bytes) {
    return DecodeError{DecodeErrc::too_large, "",
                       "message of " + std::to_string(payload.size()) + " bytes exceeds the limit of " +
                           std::to_string(limits.max_bytes)};
  }
  return Decoder(payload, limits).run();
}

void encode_to(const Message& m, std::string& out) {
  using detail::append_json_string;
  out.reserve(out.size() + 256 + m.content.size());
  out.append(R"({"header":{"msg_id":)");
  append_json_string(out, m.header.msg_id);
  if (!m.header.parent_msg_id.empty()) {
    out.append(R"(,"parent_msg_id":)");
    append_json_string(out, m.header.parent_msg_id);
  }
  out.append(R"(,"timestamp":)");
  out.append(std::to_string(m.header.timestamp));
  if (!m.header.resource_version.empty()) {
    out.append(R"(,"resourceversion":)");
    append_json_string(out, m.header.resource_version);
  }
  if (m.header.sync) out.append(R"(,"sync":true)");
  if (!m.header.type.empty()) {
    out.append(R"(,"type":)");
    append_json_string(out, m.header.type);
  }
  out.append(R"(},"route":{)");
  bool first = true;
  const auto field = [&](std::string_view name, const std::string& value) {
    if (value.empty()) return;
    if (!first) out.push_back(',');
    first = false;
    out.push_back('"');
    out.append(name);
    out.append("\":");
    append_json_string(out, value);
  };
  field("source", m.route.source);
  field("destination", m.route.destination);
  field("group", m.route.group);
  field("operation", m.route.operation);
  field("resource", m.route.resource);
  out.append(R"(},"content":)");
  out.append(m.content.empty() ? std::string_view("null") : std::string_view(m.content));
  out.append("}\n");
}

std::string encode(const Message& message) {
  std::string out;
  encode_to(message, out);
  return out;
}

std::optional<std::string> Message::content_string() const {
  if (content.empty() || content.front() != '"') return std::nullopt;
  JsonReader reader(content, 1);
  std::string text;
  if (!reader.read_string(&text)) return std::nullopt;
  return text;
}

nlohmann::json Message::content_json() const {
  return parse_json_bounded(content, kMaxEdgeJsonDepth);
}

void Message::set_content_string(std::string_view text) {
  content.clear();
  detail::append_json_string(content, text);
}

}  // namespace edgehub::wire

#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>
#include <edgehub/wire/json_safe.hpp>

#include <array>
#include <chrono>
#include <random>

namespace edgehub::wire {

std::string new_message_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::array<unsigned char, 16> bytes{};
  const std::uint64_t hi = rng();
  const std::uint64_t lo = rng();
  for (int i = 0; i < 8; ++i) {
    bytes[static_cast<std::size_t>(i)] = static_cast<unsigned char>(hi >> (8 * i));
    bytes[static_cast<std::size_t>(i + 8)] = static_cast<unsigned char>(lo >> (8 * i));
  }
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  std::string id;
  id.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    id.push_back(kHex[bytes[i] >> 4]);
    id.push_back(kHex[bytes[i] & 0xF]);
  }
  return id;
}

std::int64_t now_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Message make_ack(const Message& acked, std::int64_t timestamp) {
  Message ack;
  ack.header.msg_id = new_message_id();
  ack.header.parent_msg_id = acked.header.msg_id;
  ack.header.timestamp = timestamp;
  ack.route.source = acked.route.source;
  ack.route.group = acked.route.group;
  ack.route.operation = std::string(operation::kResponse);
  ack.route.resource = acked.route.resource;
  ack.set_content_string(kContentOK);
  return ack;
}

Message make_response(const Message& request, std::string content_json, std::string_view source,
                      std::string_view group, std::string resource_version,
                      std::int64_t timestamp) {
  Message reply;
  reply.header.msg_id = new_message_id();
  reply.header.parent_msg_id = request.header.msg_id;
  reply.header.timestamp = timestamp != 0 ? timestamp : now_millis();
  reply.header.resource_version = std::move(resource_version);
  reply.route.source = std::string(source);
  reply.route.group = std::string(group);
  reply.route.operation = std::string(operation::kResponse);
  reply.route.resource = request.route.resource;
  reply.content = std::move(content_json);
  return reply;
}

std::string object_resp(std::string_view object_json, std::string_view err_json) {
  std::string out;
  out.reserve(object_json.size() + err_json.size() + 20);
  out.append(R"({"Object":)");
  out.append(object_json.empty() ? std::string_view("null") : object_json);
  out.append(R"(,"Err":)");
  out.append(err_json.empty() ? std::string_view("null") : err_json);
  out.push_back('}');
  return out;
}

std::string status_error(const StatusErrorFields& f) {
  nlohmann::ordered_json status;
  status["metadata"] = nlohmann::json::object();
  status["status"] = "Failure";
  status["message"] = f.message;
  status["reason"] = f.reason;
  nlohmann::ordered_json details = nlohmann::ordered_json::object();
  if (!f.name.empty()) details["name"] = f.name;
  if (!f.group.empty()) details["group"] = f.group;
  if (!f.kind.empty()) details["kind"] = f.kind;
  if (!details.empty()) status["details"] = details;
  status["code"] = f.code;
  nlohmann::ordered_json err;
  err["ErrStatus"] = std::move(status);
  // Go's field order (ordered_json); messages may quote bytes that are not UTF-8.
  return err.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string status_error_from_status(const nlohmann::json& s) {
  StatusErrorFields f;
  f.reason = s.value("reason", "");
  f.code = s.value("code", 500);
  f.message = s.value("message", "");
  if (auto d = s.find("details"); d != s.end() && d->is_object()) {
    f.name = d->value("name", "");
    f.group = d->value("group", "");
    f.kind = d->value("kind", "");
  }
  return status_error(f);
}

namespace {

bool contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

// The resource type of an `ns/type/name` resource, else empty.
std::string_view resource_type(std::string_view resource) {
  const auto first = resource.find('/');
  if (first == std::string_view::npos) return {};
  const auto rest = resource.substr(first + 1);
  return rest.substr(0, rest.find('/'));
}

}  // namespace

bool needs_ack(const Message& m) {
  const auto& resource = m.route.resource;
  const auto& op = m.route.operation;
  for (std::string_view never : {"podlist", "membership", "twin/cloud_updated",
                                 "serviceaccounttoken", "k8s/ca.crt"}) {
    if (contains(resource, never)) return false;
  }
  for (std::string_view csi : {"createvolume", "deletevolume", "controllerpublishvolume",
                               "controllerunpublishvolume"}) {
    if (op == csi) return false;
  }
  if (op == "applicationResponse" || m.route.group == "user") return false;
  if (m.route.source == "taskmanager" || m.route.source == "nodeupgradejobcontroller") return false;
  if (op == operation::kResponse) {
    if (m.content_string() == std::string(kContentOK)) return false;
    if (m.content.starts_with(R"({"ErrStatus")")) return false;
  }
  if (m.route.source == source::kEdgeController) {
    const auto type = resource_type(resource);
    if (type == "node" && op != operation::kUpdate) return false;
    for (std::string_view never : {"lease", "nodepatch", "podpatch", "podstatus",
                                   "certificatesigningrequest"}) {
      if (type == never) return false;
    }
    if (type == "pod" && op == operation::kResponse) return false;
  }
  return true;
}

}  // namespace edgehub::wire

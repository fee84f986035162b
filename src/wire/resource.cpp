#include <edgehub/wire/resource.hpp>

#include <vector>

namespace edgehub::wire {

namespace {

std::vector<std::string_view> split(std::string_view text) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto slash = text.find('/', start);
    parts.push_back(text.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return parts;
    start = slash + 1;
  }
}

ResourceError invalid(std::string_view text, std::string why) {
  return ResourceError{std::string(text), "resource \"" + std::string(text) + "\": " + std::move(why)};
}

bool printable(std::string_view segment) {
  for (char c : segment) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7F) return false;
  }
  return true;
}

}  // namespace

boost::system::result<Resource, ResourceError> parse_resource(std::string_view text) {
  Resource r;
  if (text.empty()) return invalid(text, "empty");
  if (text.size() > 1024) return invalid(text.substr(0, 64), "longer than 1024 bytes");
  if (text == "node") {
    r.form = ResourceForm::keepalive;
    return r;
  }
  if (text == "membership") {
    r.form = ResourceForm::membership;
    return r;
  }
  if (text == "membership/detail") {
    r.form = ResourceForm::membership_detail;
    return r;
  }
  if (text == "twin") {
    r.form = ResourceForm::twin;
    return r;
  }
  if (text == "k8s/ca.crt") {
    r.form = ResourceForm::k8s_ca;
    return r;
  }
  const auto parts = split(text);
  for (const auto& part : parts) {
    if (part.empty()) return invalid(text, "empty segment");
    if (!printable(part)) return invalid(text, "control character or space in a segment");
  }
  if (parts[0] == "device") {
    // device/<ns>/<name>/twin/edge_updated, device/<ns>/<name>/state/update
    if (parts.size() < 5) return invalid(text, "a device resource needs device/<ns>/<name>/<event>");
    if (parts.size() > 5) return invalid(text, "too many segments for a device resource");
    r.type = "device";
    r.ns = std::string(parts[1]);
    r.name = std::string(parts[2]);
    r.event = std::string(parts[3]) + "/" + std::string(parts[4]);
    if (parts[3] == "twin") {
      r.form = ResourceForm::device_twin;
    } else if (parts[3] == "state") {
      r.form = ResourceForm::device_state;
    } else {
      return invalid(text, "unknown device event \"" + r.event + "\"");
    }
    return r;
  }
  if (parts.size() < 2) return invalid(text, "too few segments, want <namespace>/<type>[/<name>]");
  if (parts.size() > 3) return invalid(text, "too many segments, want <namespace>/<type>[/<name>]");
  r.form = ResourceForm::object;
  if (parts[0] != kNullNamespace) r.ns = std::string(parts[0]);
  r.type = std::string(parts[1]);
  if (parts.size() == 3) r.name = std::string(parts[2]);
  return r;
}

std::string format_resource(std::string_view ns, std::string_view type, std::string_view name) {
  std::string out;
  out.reserve(ns.size() + type.size() + name.size() + 6);
  out.append(ns.empty() ? kNullNamespace : ns);
  out.push_back('/');
  out.append(type);
  if (!name.empty()) {
    out.push_back('/');
    out.append(name);
  }
  return out;
}

}  // namespace edgehub::wire

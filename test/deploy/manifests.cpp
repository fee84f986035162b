#include "manifests.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "process.hpp"

namespace edgehub::test::deploy {

using nlohmann::json;

std::string source(const std::string& relative) {
  return std::string(EDGEHUB_SOURCE_DIR) + "/" + relative;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + " cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string make_temp_dir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp " + pattern + " failed");
  return pattern + "/";
}

std::vector<YAML::Node> kustomize(const std::string& relative_dir) {
  const auto kubectl = find_program("kubectl");
  if (kubectl.empty()) throw std::runtime_error("kubectl is not on PATH (scripts/install-deps.sh)");
  const auto r = run({kubectl, "kustomize", source(relative_dir)});
  if (r.exit_code != 0) {
    throw std::runtime_error("kubectl kustomize " + relative_dir + " failed: " + r.err);
  }
  std::vector<YAML::Node> objects;
  for (const auto& doc : YAML::LoadAll(r.out)) {
    if (doc.IsMap()) objects.push_back(doc);
  }
  return objects;
}

std::vector<YAML::Node> all_of_kind(const std::vector<YAML::Node>& objects,
                                    const std::string& kind) {
  std::vector<YAML::Node> out;
  for (const auto& o : objects) {
    if (o["kind"].as<std::string>("") == kind) out.push_back(o);
  }
  return out;
}

YAML::Node find_object(const std::vector<YAML::Node>& objects, const std::string& kind,
                              const std::string& name) {
  for (const auto& o : objects) {
    if (o["kind"].as<std::string>("") != kind) continue;
    if (name.empty() || o["metadata"]["name"].as<std::string>("") == name) return o;
  }
  throw std::runtime_error("no " + kind + (name.empty() ? "" : " " + name) + " in the manifests");
}

json to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(to_json(item));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted in the source: a string
      if (text == "true" || text == "false") return text == "true";
      if (std::regex_match(text, std::regex("-?[0-9]+"))) return std::stoll(text);
      if (std::regex_match(text, std::regex("-?[0-9]+\\.[0-9]+"))) return std::stod(text);
      return text;
    }
    default:
      return nullptr;
  }
}

std::vector<std::string> schema_errors(const json& schema, const json& value,
                                       const std::string& path) {
  std::vector<std::string> errors;
  const std::string where = path.empty() ? "." : path;
  const std::string type = schema.value("type", "");
  auto fail = [&](const std::string& what) { errors.push_back(where + ": " + what); };
  if (type == "object" && !value.is_object()) return {where + ": not an object"};
  if (type == "array" && !value.is_array()) return {where + ": not an array"};
  if (type == "string" && !value.is_string()) return {where + ": not a string"};
  if (type == "boolean" && !value.is_boolean()) return {where + ": not a boolean"};
  if (type == "integer" && !value.is_number_integer()) return {where + ": not an integer"};
  if (type == "number" && !value.is_number()) return {where + ": not a number"};
  if (schema.contains("enum") &&
      std::find(schema["enum"].begin(), schema["enum"].end(), value) == schema["enum"].end()) {
    fail("not one of " + schema["enum"].dump());
  }
  if (value.is_string() && schema.value("format", "") == "date-time" &&
      !std::regex_match(value.get<std::string>(),
                        std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))"))) {
    fail("not an RFC 3339 date-time");
  }
  if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      auto more = schema_errors(schema["items"], value[i], path + "[" + std::to_string(i) + "]");
      errors.insert(errors.end(), more.begin(), more.end());
    }
  }
  if (value.is_object()) {
    const json properties = schema.value("properties", json::object());
    const bool open = schema.value("x-kubernetes-preserve-unknown-fields", false) ||
                      schema.contains("additionalProperties") || path == ".metadata";
    for (const auto& [key, item] : value.items()) {
      if (properties.contains(key)) {
        auto more = schema_errors(properties[key], item, path + "." + key);
        errors.insert(errors.end(), more.begin(), more.end());
      } else if (!open) {
        errors.push_back(path + "." + key + ": unknown field (the API server would drop it)");
      }
    }
    for (const auto& key : schema.value("required", json::array())) {
      if (!value.contains(key.get<std::string>())) fail("missing " + key.get<std::string>());
    }
  }
  return errors;
}

std::string Request::describe() const {
  std::string out = verb + " " + (group.empty() ? "" : group + "/") + resource;
  if (!subresource.empty()) out += "/" + subresource;
  out += " in " + (ns.empty() ? std::string("(cluster)") : "namespace " + ns);
  if (!name.empty()) out += " name " + name;
  return out + " (" + user_agent + ")";
}

std::vector<Request> read_request_log(const std::string& path) {
  std::vector<Request> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    out.push_back({j.at("verb"), j.at("group"), j.at("resource"), j.at("subresource"),
                   j.at("namespace"), j.at("name"), j.at("userAgent")});
  }
  return out;
}

Rbac::Rbac(const std::vector<YAML::Node>& objects, const std::string& sa_namespace,
           const std::string& sa_name) {
  auto bound = [&](const YAML::Node& binding) {
    for (const auto& s : binding["subjects"]) {
      if (s["kind"].as<std::string>("") == "ServiceAccount" &&
          s["name"].as<std::string>("") == sa_name &&
          s["namespace"].as<std::string>("") == sa_namespace) {
        return true;
      }
    }
    return false;
  };
  for (const auto& binding : objects) {
    const auto kind = binding["kind"].as<std::string>("");
    if ((kind != "ClusterRoleBinding" && kind != "RoleBinding") || !bound(binding)) continue;
    const auto role_kind = binding["roleRef"]["kind"].as<std::string>();
    const auto role_name = binding["roleRef"]["name"].as<std::string>();
    std::optional<std::string> ns;
    if (kind == "RoleBinding") ns = binding["metadata"]["namespace"].as<std::string>();
    const YAML::Node* role = nullptr;
    for (const auto& o : objects) {
      if (o["kind"].as<std::string>("") == role_kind &&
          o["metadata"]["name"].as<std::string>("") == role_name &&
          (role_kind == "ClusterRole" || o["metadata"]["namespace"].as<std::string>("") == *ns)) {
        role = &o;
      }
    }
    if (role == nullptr) throw std::runtime_error("binding to a missing " + role_kind + " " + role_name);
    for (const auto& rule : (*role)["rules"]) rules_.push_back({ns, rule});
  }
}

bool Rbac::allows(const Request& r) const {
  auto has = [](const YAML::Node& list, const std::string& want) {
    for (const auto& item : list) {
      const auto v = item.as<std::string>();
      if (v == want || v == "*") return true;
    }
    return false;
  };
  const std::string resource = r.subresource.empty() ? r.resource : r.resource + "/" + r.subresource;
  for (const auto& [ns, rule] : rules_) {
    if (ns && *ns != r.ns) continue;
    if (!has(rule["apiGroups"], r.group) || !has(rule["resources"], resource) ||
        !has(rule["verbs"], r.verb)) {
      continue;
    }
    if (rule["resourceNames"] && !(r.name.empty() ? false : has(rule["resourceNames"], r.name))) {
      continue;
    }
    return true;
  }
  return false;
}

}  // namespace edgehub::test::deploy

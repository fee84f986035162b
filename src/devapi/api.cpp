#include "api.hpp"

#include <edgehub/wire/json_safe.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <set>

#include "discovery.hpp"
#include "protobuf.hpp"
#include "table.hpp"
#include "util.hpp"

namespace edgehub::devapi::detail {

namespace http = boost::beast::http;
using nlohmann::json;

namespace {

std::string url_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

struct Target {
  std::string path;
  std::map<std::string, std::string> query;

  std::optional<std::string> param(const std::string& key) const {
    auto it = query.find(key);
    if (it == query.end()) return std::nullopt;
    return it->second;
  }
  std::string get(const std::string& key) const { return param(key).value_or(""); }
  bool flag(const std::string& key) const {
    const std::string v = get(key);
    return v == "1" || v == "true" || v == "True";
  }
};

Target parse_target(std::string_view target) {
  Target out;
  const auto q = target.find('?');
  out.path = url_decode(target.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const auto eq = pair.find('=');
    const std::string key = url_decode(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (!key.empty()) out.query[key] = value;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return out;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start < path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

Reply json_reply(unsigned status, const json& body) {
  return {status, wire::dump_json(body), "application/json"};
}

std::string content_type_of(const HttpRequest& request);

json parse_body(const HttpRequest& request, const ResourceInfo& resource) {
  const std::string type = content_type_of(request);
  if (type == "application/vnd.kubernetes.protobuf") {
    return decode_protobuf_object(request.body(), resource);
  }
  if (type.find("protobuf") != std::string::npos || type.find("cbor") != std::string::npos) {
    throw ApiError(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types "
                   "include: application/json, application/yaml",
                   nlohmann::json::object());
  }
  const std::string& body = request.body();
  // Parsing is iterative, but storing, copying and serialising the object recurse.
  if (!wire::json_nesting_within(body, wire::kMaxApiJsonDepth)) {
    throw ApiError::bad_request("the object provided is unrecognized (must be of type " +
                                resource.kind + "): json: exceeded max depth of " +
                                std::to_string(wire::kMaxApiJsonDepth));
  }
  try {
    return json::parse(body);
  } catch (const json::parse_error& error) {
    std::string preview = body.substr(0, 30);
    if (body.size() > 30) preview += " ...";
    // Go's wording: a body cut short is "unexpected end of JSON input".
    const std::string reason = error.byte >= body.size() ? "unexpected end of JSON input"
                                                         : "invalid character in JSON input";
    throw ApiError::bad_request(
        "the object provided is unrecognized (must be of type " + resource.kind +
        "): couldn't get version/kind; json parse error: " + reason + " (" + preview + ")");
  }
}

std::string content_type_of(const HttpRequest& request) {
  std::string type(request[http::field::content_type]);
  const auto semi = type.find(';');
  if (semi != std::string::npos) type.resize(semi);
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return type;
}

std::optional<std::int64_t> parse_int(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  try {
    return std::stoll(*text);
  } catch (const std::exception&) {
    throw ApiError::bad_request("invalid integer \"" + *text + "\"");
  }
}

ListOptions list_options(const Target& target) {
  ListOptions options;
  options.label_selector = target.get("labelSelector");
  options.field_selector = target.get("fieldSelector");
  options.limit = parse_int(target.param("limit")).value_or(0);
  options.continue_token = target.get("continue");
  options.resource_version = target.param("resourceVersion");
  options.resource_version_match = target.param("resourceVersionMatch");
  if (options.resource_version_match && options.resource_version_match->empty()) {
    options.resource_version_match.reset();
  }
  return options;
}

DeleteOptions delete_options(const HttpRequest& request, const Target& target) {
  DeleteOptions options;
  options.grace_period_seconds = parse_int(target.param("gracePeriodSeconds"));
  if (!request.body().empty()) {
    json body = wire::parse_json_bounded(request.body(), wire::kMaxApiJsonDepth);
    if (body.is_discarded() || !body.is_object()) {
      throw ApiError::bad_request("the body of the request was in an unknown format");
    }
    if (body.contains("gracePeriodSeconds") && body["gracePeriodSeconds"].is_number_integer()) {
      options.grace_period_seconds = body["gracePeriodSeconds"].get<std::int64_t>();
    }
    if (body.contains("preconditions") && body["preconditions"].is_object()) {
      const json& pre = body["preconditions"];
      if (pre.contains("uid") && pre["uid"].is_string()) {
        options.precondition_uid = pre["uid"].get<std::string>();
      }
      if (pre.contains("resourceVersion") && pre["resourceVersion"].is_string()) {
        options.precondition_resource_version = pre["resourceVersion"].get<std::string>();
      }
    }
  }
  return options;
}

PatchType patch_type(const std::string& content_type, const json& body) {
  if (content_type == "application/merge-patch+json") return PatchType::kMerge;
  if (content_type == "application/strategic-merge-patch+json") return PatchType::kStrategicMerge;
  if (content_type == "application/json-patch+json") return PatchType::kJson;
  // Server-side apply is not implemented; a JSON apply body is merged instead, which gives the
  // same result for objects the caller fully owns.
  if (content_type == "application/apply-patch+yaml" && body.is_object()) return PatchType::kMerge;
  throw ApiError::unsupported_media_type(content_type);
}

struct ResourcePath {
  const ResourceInfo* resource = nullptr;
  std::string ns;
  std::string name;
  std::string subresource;
};

// rest: the segments after /api/v1 or /apis/<g>/<v>.
ResourcePath parse_resource_path(const std::string& group, const std::string& version,
                                 const std::vector<std::string>& rest) {
  ResourcePath out;
  std::size_t i = 0;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    const ResourceInfo* inner = find_resource(group, version, rest[2]);
    if (inner != nullptr && inner->namespaced) {
      out.ns = rest[1];
      i = 2;
    }
  }
  out.resource = find_resource(group, version, rest[i]);
  if (out.resource == nullptr) throw ApiError::unknown_resource();
  if (out.resource->namespaced && i == 0 && rest.size() > 1) {
    // /api/v1/pods/<name>: namespaced objects need their namespace.
    throw ApiError::unknown_resource();
  }
  if (rest.size() > i + 1) out.name = rest[i + 1];
  if (rest.size() > i + 2) out.subresource = rest[i + 2];
  if (rest.size() > i + 3) throw ApiError::unknown_resource();
  return out;
}

json token_request(Store& store, const ResourcePath& path, const HttpRequest& request) {
  json sa = store.get(*path.resource, path.ns, path.name);  // 404 when missing
  json body = request.body().empty() ? json::object() : wire::parse_json_bounded(request.body(), wire::kMaxApiJsonDepth);
  if (body.is_discarded() || !body.is_object()) {
    throw ApiError::bad_request(
        "the object provided is unrecognized (must be of type TokenRequest)");
  }
  json spec = body.value("spec", json::object());
  if (!spec.is_object()) spec = json::object();
  const std::int64_t seconds = spec.value("expirationSeconds", std::int64_t{3600});
  if (seconds < 600) {
    throw ApiError::invalid("TokenRequest", path.name,
                            json::array({{{"reason", "FieldValueInvalid"},
                                          {"message", "Invalid value: " + std::to_string(seconds) +
                                                          ": may not specify a duration less "
                                                          "than 10 minutes"},
                                          {"field", "spec.expirationSeconds"}}}),
                            "authentication.k8s.io");
  }
  const json claims = {{"sub", "system:serviceaccount:" + path.ns + ":" + path.name},
                       {"uid", sa["metadata"].value("uid", "")},
                       {"exp_in", seconds},
                       {"jti", new_uid()}};
  const std::string token = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                            base64url_encode(wire::dump_json(claims)) + ".devapi";
  json result_spec = spec;
  result_spec["expirationSeconds"] = seconds;
  if (!result_spec.contains("audiences")) result_spec["audiences"] = json::array();
  if (!result_spec.contains("boundObjectRef")) result_spec["boundObjectRef"] = nullptr;
  return {{"kind", "TokenRequest"},
          {"apiVersion", "authentication.k8s.io/v1"},
          {"metadata",
           {{"name", path.name}, {"namespace", path.ns}, {"creationTimestamp", rfc3339_now()}}},
          {"spec", result_spec},
          {"status", {{"token", token}, {"expirationTimestamp", rfc3339_now(seconds)}}}};
}

}  // namespace

Api::Api(Store& store, const ServerOptions& options)
    : store_(store),
      options_(options),
      requests_(metrics_.counter(
          "apiserver_request_total",
          "Requests answered, as kube-apiserver counts them: by verb (GET, LIST, WATCH, POST, "
          "PUT, PATCH, DELETE, DELETECOLLECTION), group, resource, subresource and HTTP code.",
          {"verb", "group", "resource", "subresource", "code"})) {
  std::string path = options.request_log;
  if (const char* env = std::getenv("EDGEHUB_DEVAPI_REQUEST_LOG"); path.empty() && env != nullptr) {
    path = env;
  }
  if (path.empty()) return;
  log_.open(path, std::ios::app);
  if (!log_) throw std::runtime_error("devapi: request log " + path + " cannot be opened");
}

namespace {

// The verb as RBAC names it: get/list/watch/create/update/patch/delete/deletecollection.
std::string rbac_verb(http::verb method, bool named, bool watch) {
  switch (method) {
    case http::verb::get: return named ? "get" : watch ? "watch" : "list";
    case http::verb::post: return "create";
    case http::verb::put: return "update";
    case http::verb::patch: return "patch";
    case http::verb::delete_: return named ? "delete" : "deletecollection";
    default: return std::string(http::to_string(method));
  }
}

// A subresource as a label: the path's text only when it is one Kubernetes has.
std::string metric_subresource(const std::string& subresource) {
  static const std::set<std::string, std::less<>> known = {
      "",          "status",     "scale",   "token",       "binding",
      "eviction",  "log",        "exec",    "attach",      "portforward",
      "proxy",     "ephemeralcontainers",   "resize",      "approval"};
  return known.contains(subresource) ? subresource : "other";
}

// The verb as kube-apiserver's metrics name it.
std::string metric_verb(http::verb method, bool named, bool watch) {
  switch (method) {
    case http::verb::get: return named ? "GET" : watch ? "WATCH" : "LIST";
    case http::verb::delete_: return named ? "DELETE" : "DELETECOLLECTION";
    case http::verb::post:
    case http::verb::put:
    case http::verb::patch: return std::string(http::to_string(method));
    default: return "OTHER";
  }
}

}  // namespace

void Api::log_request(const HttpRequest& request, const std::string& verb,
                      const std::string& group, const std::string& resource,
                      const std::string& subresource, const std::string& ns,
                      const std::string& name) {
  const json line = {{"verb", verb},           {"group", group},
                     {"resource", resource},   {"subresource", subresource},
                     {"namespace", ns},        {"name", name},
                     {"userAgent", std::string(request[http::field::user_agent])}};
  const std::lock_guard lock(log_mutex_);
  log_ << wire::dump_json(line) << '\n' << std::flush;
}

Reply Api::error_reply(const ApiError& error) {
  return json_reply(static_cast<unsigned>(error.code()), error.status());
}

Routed Api::handle(const HttpRequest& request, const std::string& server_address) {
  Labels labels;
  Routed routed;
  try {
    routed = route(request, server_address, labels);
  } catch (const ApiError& error) {
    routed = {error_reply(error), std::nullopt};
  } catch (const std::exception& error) {
    spdlog::error("devapi: {} {} failed: {}", std::string(request.method_string()),
                  std::string(request.target()), error.what());
    routed = {error_reply(ApiError::internal(error.what())), std::nullopt};
  }
  count(labels, routed.watch ? 200 : routed.reply.status);
  return routed;
}

void Api::count(const Labels& labels, unsigned code) {
  // Labels are the method's verb and the names of resources the server knows, never a path's
  // free text: an unknown resource is counted with the resource unset.
  requests_.with({labels.verb, labels.group, labels.resource, labels.subresource,
                  std::to_string(code)})
      .inc();
}

namespace {

Routed ok(unsigned status, const json& body) {
  return {json_reply(status, body), std::nullopt};
}

// /version, /healthz, /openapi/v3..., /api, /apis, /apis/<g>, and the APIResourceLists.
// nullopt: the path names resources.
std::optional<Routed> discovery(http::verb method, const Target& target,
                                const std::vector<std::string>& parts,
                                const std::string& server_address) {
  auto only_get = [&](const json& body) -> Routed {
    if (method != http::verb::get) throw ApiError::method_not_allowed();
    return ok(200, body);
  };
  if (target.path == "/version" || target.path == "/version/") return only_get(version_info());
  if (target.path == "/healthz" || target.path == "/readyz" || target.path == "/livez") {
    return Routed{{200, "ok", "text/plain; charset=utf-8"}, std::nullopt};
  }
  if (parts.empty()) throw ApiError::unknown_resource();
  if (parts[0] == "openapi") {
    std::optional<json> doc;
    if (parts.size() == 2 && parts[1] == "v3") doc = openapi_v3_root();
    if (parts.size() == 4 && parts[1] == "v3" && parts[2] == "api") {
      doc = openapi_v3_group_version("", parts[3]);
    }
    if (parts.size() == 5 && parts[1] == "v3" && parts[2] == "apis") {
      doc = openapi_v3_group_version(parts[3], parts[4]);
    }
    if (!doc) throw ApiError::unknown_resource();  // no OpenAPI v2: kubectl copes without it
    return only_get(*doc);
  }
  if (parts[0] == "api") {
    if (parts.size() == 1) return only_get(api_versions(server_address));
    if (parts[1] != "v1") throw ApiError::unknown_resource();
    if (parts.size() == 2) return only_get(*api_resource_list("", "v1"));
    return std::nullopt;
  }
  if (parts[0] != "apis") throw ApiError::unknown_resource();
  if (parts.size() == 1) return only_get(api_group_list());
  if (parts.size() == 2) {
    auto doc = api_group(parts[1]);
    if (!doc) throw ApiError::unknown_resource();
    return only_get(*doc);
  }
  if (parts.size() == 3) {
    auto doc = api_resource_list(parts[1], parts[2]);
    if (!doc) throw ApiError::unknown_resource();
    return only_get(*doc);
  }
  return std::nullopt;
}

WatchPlan watch_plan(const HttpRequest& request, const Target& target, const ResourcePath& path,
                     const ServerOptions& options) {
  WatchPlan plan;
  if (auto version = table_version_wanted(request[http::field::accept])) {
    plan.table_version = *version;
    plan.table_include = parse_include_object(target.get("includeObject"));
  }
  plan.resource = path.resource;
  plan.options.namespace_ = path.ns;
  plan.options.label_selector = target.get("labelSelector");
  plan.options.field_selector = target.get("fieldSelector");
  plan.options.resource_version = target.param("resourceVersion");
  plan.options.resource_version_match = target.param("resourceVersionMatch");
  if (plan.options.resource_version_match && plan.options.resource_version_match->empty()) {
    plan.options.resource_version_match.reset();
  }
  plan.options.send_initial_events = target.flag("sendInitialEvents");
  plan.options.allow_bookmarks = target.flag("allowWatchBookmarks");
  const auto timeout = parse_int(target.param("timeoutSeconds"));
  plan.timeout =
      timeout && *timeout > 0 ? std::chrono::seconds(*timeout) : options.default_watch_timeout;
  // Selectors are checked before the stream starts: a bad one is a plain 400.
  (void)LabelSelector::parse(plan.options.label_selector);
  (void)FieldSelector::parse(plan.options.field_selector, *path.resource);
  return plan;
}

// A read answered as kubectl's Table when the Accept header asks for one first.
Routed read_reply(const HttpRequest& request, const Target& target, const ResourceInfo& resource,
                  const json& body, bool is_list) {
  const auto version = table_version_wanted(request[http::field::accept]);
  if (!version) return ok(200, body);
  const IncludeObject include = parse_include_object(target.get("includeObject"));
  return ok(200, to_table(resource, body, is_list, *version, include,
                          std::chrono::system_clock::now()));
}

Routed collection_request(Store& store, const ServerOptions& options, const HttpRequest& request,
                          const Target& target, const ResourcePath& path) {
  const ResourceInfo& resource = *path.resource;
  switch (request.method()) {
    case http::verb::get:
      if (target.flag("watch")) {
        // Built before the Routed: GCC 12 destroys already-built members of an aggregate
        // twice when a later initializer throws (PR c++/66139).
        WatchPlan plan = watch_plan(request, target, path, options);
        return {{}, std::move(plan)};
      }
      return read_reply(request, target, resource, store.list(resource, path.ns, list_options(target)),
                        true);
    case http::verb::post:
      if (resource.namespaced && path.ns.empty()) throw ApiError::method_not_allowed();
      return ok(201, store.create(resource, path.ns, parse_body(request, resource)));
    case http::verb::delete_:
      return ok(200, store.remove_collection(resource, path.ns, list_options(target),
                                             delete_options(request, target)));
    default:
      throw ApiError::method_not_allowed();
  }
}

Routed object_request(Store& store, const HttpRequest& request, const Target& target,
                      const ResourcePath& path) {
  const ResourceInfo& resource = *path.resource;
  if (path.subresource == "token" && resource.resource == "serviceaccounts") {
    if (request.method() != http::verb::post) throw ApiError::method_not_allowed();
    return ok(201, token_request(store, path, request));
  }
  const bool status = !path.subresource.empty();
  if (status && (path.subresource != "status" || !resource.has_status)) {
    throw ApiError::unknown_resource();
  }
  switch (request.method()) {
    case http::verb::get:
      return read_reply(request, target, resource, store.get(resource, path.ns, path.name), false);
    case http::verb::put:
      return ok(200,
                store.update(resource, path.ns, path.name, parse_body(request, resource), status));
    case http::verb::patch: {
      json body = wire::parse_json_bounded(request.body(), wire::kMaxApiJsonDepth);
      if (body.is_discarded()) {
        throw ApiError::bad_request("error decoding patch: invalid JSON in patch body");
      }
      const PatchType type = patch_type(content_type_of(request), body);
      return ok(200, store.patch(resource, path.ns, path.name, type, body, status));
    }
    case http::verb::delete_:
      if (status) throw ApiError::method_not_allowed();
      return ok(200,
                store.remove(resource, path.ns, path.name, delete_options(request, target)).body);
    default:
      throw ApiError::method_not_allowed();
  }
}

}  // namespace

Routed Api::route(const HttpRequest& request, const std::string& server_address,
                  Labels& labels) {
  labels.verb = metric_verb(request.method(), true, false);
  if (!options_.bearer_token.empty()) {
    const std::string_view auth = request[http::field::authorization];
    if (auth != "Bearer " + options_.bearer_token) throw ApiError::unauthorized();
  }
  const Target target = parse_target(request.target());
  if (target.path == "/metrics" && request.method() == http::verb::get) {
    return {Reply{200, metrics_.expose(), "text/plain; version=0.0.4; charset=utf-8"},
            std::nullopt};
  }
  const auto parts = split_path(target.path);
  if (auto routed = discovery(request.method(), target, parts, server_address)) return *routed;

  // /api/v1/<rest...> or /apis/<group>/<version>/<rest...>
  const bool core = parts[0] == "api";
  const std::string group = core ? "" : parts[1];
  const std::string version = core ? parts[1] : parts[2];
  const std::vector<std::string> rest(parts.begin() + (core ? 2 : 3), parts.end());
  const ResourcePath path = parse_resource_path(group, version, rest);
  labels = {metric_verb(request.method(), !path.name.empty(), target.flag("watch")), group,
            path.resource->resource, metric_subresource(path.subresource)};
  if (log_.is_open()) {
    log_request(request, rbac_verb(request.method(), !path.name.empty(), target.flag("watch")),
                group, path.resource->resource, path.subresource, path.ns, path.name);
  }
  if (path.name.empty()) return collection_request(store_, options_, request, target, path);
  return object_request(store_, request, target, path);
}

}  // namespace edgehub::devapi::detail

#include <cctype>
#include <edgehub/wire/json_safe.hpp>
#include <nlohmann/json.hpp>

#include "transport.hpp"

namespace edgehub::kube {

namespace {

class Query {
 public:
  void add(std::string_view key, std::string_view value) {
    if (value.empty()) return;
    text_ += text_.empty() ? '?' : '&';
    text_ += key;
    text_ += '=';
    text_ += url_encode(value);
  }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

Result<Object> object_from(Result<Response>&& res) {
  if (!res) return res.error();
  if (res->status / 100 != 2) return error_from_response(res->status, res->body, res->retry_after);
  return decode_object(res->body);
}

std::string_view patch_content_type(PatchType t) {
  switch (t) {
    case PatchType::Merge: return "application/merge-patch+json";
    case PatchType::StrategicMerge: return "application/strategic-merge-patch+json";
    case PatchType::Json: return "application/json-patch+json";
  }
  return "application/merge-patch+json";
}

// The resource label of a request: "pods", "nodes/status".
std::string label(const Resource& res, std::string_view subresource = {}) {
  std::string out = res.plural;
  if (!subresource.empty()) {
    out += '/';
    out += subresource;
  }
  return out;
}

std::string write_query(const RequestOptions& opt) {
  Query q;
  q.add("fieldManager", opt.field_manager);
  return q.str();
}

}  // namespace

Result<std::shared_ptr<Client>> Client::make(net::any_io_executor executor, ClientConfig config,
                                             ClientOptions options) {
  auto impl = make_impl(std::move(executor), std::move(config), options);
  if (!impl) return impl.error();
  return std::shared_ptr<Client>(new Client(std::move(*impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

net::any_io_executor Client::executor() const { return impl_->executor; }
const ClientConfig& Client::config() const { return impl_->config; }
RateLimiter& Client::limiter() { return impl_->limiter; }
std::size_t Client::connections_opened() const { return impl_->opened; }
std::size_t Client::idle_connections() const { return impl_->idle.size(); }

Client::Task<Response> Client::request(std::string method, std::string target, std::string body,
                                       std::string content_type, Priority priority) {
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    co_return make_error(ErrorKind::BadRequest, "unknown HTTP method \"" + method + "\"");
  }
  auto req = impl_->make_request(verb, std::move(target), std::move(body), content_type);
  std::string verb_label(req.method_string());
  for (auto& ch : verb_label) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto answer = co_await impl_->exchange(std::move(req), priority, verb_label, "");
  co_return answer;
}

Client::Task<Object> Client::get(Resource res, std::string ns, std::string name,
                                 RequestOptions opt) {
  auto req = impl_->make_request(http::verb::get, res.path(ns, name, opt.subresource));
  auto answer =
      co_await impl_->exchange(std::move(req), opt.priority, "get", label(res, opt.subresource));
  co_return object_from(std::move(answer));
}

Client::Task<ObjectList> Client::list(Resource res, std::string ns, ListOptions opt) {
  Query q;
  q.add("labelSelector", opt.label_selector);
  q.add("fieldSelector", opt.field_selector);
  q.add("resourceVersion", opt.resource_version);
  q.add("resourceVersionMatch", opt.resource_version_match);
  if (opt.limit > 0) q.add("limit", std::to_string(opt.limit));
  q.add("continue", opt.continue_token);
  auto req = impl_->make_request(http::verb::get, res.path(ns) + q.str());
  auto r = co_await impl_->exchange(std::move(req), opt.priority, "list", label(res));
  if (!r) co_return r.error();
  if (r->status / 100 != 2) co_return error_from_response(r->status, r->body, r->retry_after);
  co_return decode_list(r->body);
}

Client::Task<ObjectList> Client::list_all(Resource res, std::string ns, ListOptions opt) {
  ObjectList all;
  for (;;) {
    auto page = co_await list(res, ns, opt);
    if (!page) co_return page.error();
    if (all.kind.empty()) all.kind = page->kind;
    all.resource_version = page->resource_version;
    for (auto& item : page->items) all.items.push_back(std::move(item));
    if (page->continue_token.empty()) break;
    opt.continue_token = page->continue_token;
    // Later pages come from the snapshot the token names.
    opt.resource_version.clear();
    opt.resource_version_match.clear();
  }
  co_return all;
}

Client::Task<Object> Client::create(Resource res, std::string ns, std::string body,
                                    RequestOptions opt) {
  auto req = impl_->make_request(http::verb::post, res.path(ns) + write_query(opt), std::move(body),
                                 "application/json");
  auto answer = co_await impl_->exchange(std::move(req), opt.priority, "create", label(res));
  co_return object_from(std::move(answer));
}

Client::Task<Object> Client::update(Resource res, std::string ns, std::string name,
                                    std::string body, RequestOptions opt) {
  if (!opt.resource_version.empty()) {
    auto j = wire::parse_json_bounded(body, wire::kMaxApiJsonDepth);
    if (!j.is_object()) co_return make_error(ErrorKind::BadRequest, "update body is not a JSON object");
    j["metadata"]["resourceVersion"] = opt.resource_version;
    body = j.dump();
  }
  auto req = impl_->make_request(http::verb::put,
                                 res.path(ns, name, opt.subresource) + write_query(opt),
                                 std::move(body), "application/json");
  auto answer =
      co_await impl_->exchange(std::move(req), opt.priority, "update", label(res, opt.subresource));
  co_return object_from(std::move(answer));
}

Client::Task<Object> Client::patch(Resource res, std::string ns, std::string name, PatchType type,
                                   std::string body, RequestOptions opt) {
  auto req = impl_->make_request(http::verb::patch,
                                 res.path(ns, name, opt.subresource) + write_query(opt),
                                 std::move(body), patch_content_type(type));
  auto answer =
      co_await impl_->exchange(std::move(req), opt.priority, "patch", label(res, opt.subresource));
  co_return object_from(std::move(answer));
}

Client::Task<Object> Client::remove(Resource res, std::string ns, std::string name,
                                    DeleteOptions opt) {
  nlohmann::json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (opt.grace_period_seconds) body["gracePeriodSeconds"] = *opt.grace_period_seconds;
  if (!opt.precondition_uid.empty()) body["preconditions"]["uid"] = opt.precondition_uid;
  if (!opt.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = opt.precondition_resource_version;
  }
  if (!opt.propagation_policy.empty()) body["propagationPolicy"] = opt.propagation_policy;
  auto req = impl_->make_request(http::verb::delete_, res.path(ns, name), body.dump(),
                                 "application/json");
  auto answer = co_await impl_->exchange(std::move(req), opt.priority, "delete", label(res));
  co_return object_from(std::move(answer));
}

// The overloads without options: plain functions (not coroutines) that build the default
// options outside any co_await expression.
Client::Task<Object> Client::get(Resource res, std::string ns, std::string name) {
  return get(std::move(res), std::move(ns), std::move(name), RequestOptions());
}
Client::Task<ObjectList> Client::list(Resource res, std::string ns) {
  return list(std::move(res), std::move(ns), ListOptions());
}
Client::Task<ObjectList> Client::list_all(Resource res, std::string ns) {
  return list_all(std::move(res), std::move(ns), ListOptions());
}
Client::Task<Object> Client::create(Resource res, std::string ns, std::string body) {
  return create(std::move(res), std::move(ns), std::move(body), RequestOptions());
}
Client::Task<Object> Client::update(Resource res, std::string ns, std::string name,
                                    std::string body) {
  return update(std::move(res), std::move(ns), std::move(name), std::move(body), RequestOptions());
}
Client::Task<Object> Client::patch(Resource res, std::string ns, std::string name, PatchType type,
                                   std::string body) {
  return patch(std::move(res), std::move(ns), std::move(name), type, std::move(body),
               RequestOptions());
}
Client::Task<Object> Client::remove(Resource res, std::string ns, std::string name) {
  return remove(std::move(res), std::move(ns), std::move(name), DeleteOptions());
}

Client::Task<Object> Client::update_status(Resource res, std::string ns, std::string name,
                                           std::string body) {
  RequestOptions opt;
  opt.subresource = "status";
  opt.priority = Priority::Status;
  auto answer = co_await update(std::move(res), std::move(ns), std::move(name), std::move(body), opt);
  co_return answer;
}

Client::Task<Object> Client::patch_status(Resource res, std::string ns, std::string name,
                                          PatchType type, std::string body) {
  RequestOptions opt;
  opt.subresource = "status";
  opt.priority = Priority::Status;
  auto answer = co_await patch(std::move(res), std::move(ns), std::move(name), type, std::move(body),
                               opt);
  co_return answer;
}

Client::Task<Object> Client::create_token(std::string ns, std::string service_account,
                                          std::string token_request) {
  auto req = impl_->make_request(http::verb::post,
                                 resources::serviceaccounts().path(ns, service_account, "token"),
                                 std::move(token_request), "application/json");
  auto answer =
      co_await impl_->exchange(std::move(req), Priority::Bulk, "create", "serviceaccounts/token");
  co_return object_from(std::move(answer));
}

Client::Task<void> Client::watch(Resource res, std::string ns, WatchOptions opt,
                                 WatchDecoder::Sink sink) {
  Query q;
  q.add("watch", "true");
  q.add("labelSelector", opt.label_selector);
  q.add("fieldSelector", opt.field_selector);
  q.add("resourceVersion", opt.resource_version);
  q.add("resourceVersionMatch", opt.resource_version_match);
  if (opt.allow_bookmarks) q.add("allowWatchBookmarks", "true");
  if (opt.send_initial_events) q.add("sendInitialEvents", "true");
  if (opt.timeout_seconds) q.add("timeoutSeconds", std::to_string(*opt.timeout_seconds));
  auto idle = opt.idle_timeout;
  if (idle.count() <= 0) {
    idle = opt.timeout_seconds ? std::chrono::seconds(*opt.timeout_seconds + 30)
                               : std::chrono::minutes(10);
  }
  auto req = impl_->make_request(http::verb::get, res.path(ns) + q.str());
  auto answer = co_await impl_->stream(std::move(req), opt.priority, idle, sink, label(res));
  co_return answer;
}

}  // namespace edgehub::kube

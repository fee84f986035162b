#pragma once

#include <edgehub/kube/config.hpp>
#include <edgehub/kube/error.hpp>
#include <edgehub/kube/object.hpp>
#include <edgehub/kube/rate_limiter.hpp>
#include <edgehub/kube/resource.hpp>
#include <edgehub/kube/watch_decoder.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::kube {

// One finished API request, reported to ClientOptions::on_request (metrics).
struct RequestRecord {
  std::string_view verb;      // Kubernetes verb: get list watch create update patch delete, or
                              // the lower-case HTTP method for Client::request
  std::string_view resource;  // plural, with "/<subresource>" ("nodes/status"); "" for request()
  int code = 0;               // HTTP status; 0 when no answer came (see error)
  std::string_view error;     // when code is 0: the transport failure, as to_string(ErrorKind)
  // From the rate limiter's grant to the full answer (a watch: to the end of the stream).
  std::chrono::steady_clock::duration duration{};
};
using RequestObserver = std::function<void(const RequestRecord&)>;

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};  // resolve + TCP + TLS handshake
  std::chrono::milliseconds request_timeout{30'000};  // write + full response (not watches)
  double qps = 50;     // <= 0: unlimited
  double burst = 100;
  // Connections kept open for reuse. As many as requests run at once in a busy replica
  // (hub.maxUpstreamInProgress is 256): fewer, and each burst above it opens connections that
  // are closed again at once — a TCP (and on a real API server, TLS) handshake per request.
  std::size_t max_idle_connections = 256;
  std::size_t max_body_bytes = 256u << 20;  // for non-watch responses
  RateLimiter::Now clock;  // the rate limiter's clock; empty: steady_clock (tests inject one)
  RequestObserver on_request;  // called on the client's executor after each request; optional
};

struct RequestOptions {
  Priority priority = Priority::Bulk;
  std::string subresource;   // "status", "token", ...
  std::string field_manager;
  // For update: the precondition written into metadata.resourceVersion (when the body does not
  // carry it already). The API server answers Conflict when it is stale.
  std::string resource_version;
};

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;        // "" = most recent (consistent read), "0" = any
  std::string resource_version_match;  // "NotOlderThan" / "Exact"
  std::int64_t limit = 0;              // page size; 0 = no paging
  std::string continue_token;
  Priority priority = Priority::Bulk;
};

struct WatchOptions {
  std::string label_selector;
  std::string field_selector;
  std::string resource_version;
  bool allow_bookmarks = true;
  std::optional<int> timeout_seconds;  // server-side end of the watch
  bool send_initial_events = false;    // WatchList (v1.27+), needs resource_version_match
  std::string resource_version_match;
  Priority priority = Priority::Bulk;
  // Longest silence tolerated between two reads; 0 = timeout_seconds + 30 s (or 10 min).
  std::chrono::milliseconds idle_timeout{0};
};

enum class PatchType { Merge, StrategicMerge, Json };

struct DeleteOptions {
  std::optional<std::int64_t> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_resource_version;
  std::string propagation_policy;  // "Foreground", "Background", "Orphan"
  Priority priority = Priority::Bulk;
};

// A raw answer, for requests outside the typed verbs.
struct Response {
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string body;
};

// Asynchronous Kubernetes API client. All operations run on the executor given at creation
// and must be started from it (the client is not thread-safe: give each thread its own, or
// post to it). Operations never throw; failures come back as kube::Error. The client must
// outlive the operations it started. Strings are taken by value because coroutines outlive
// their callers' temporaries.
class Client {
 public:
  template <class T>
  using Task = boost::asio::awaitable<Result<T>>;

  static Result<std::shared_ptr<Client>> make(boost::asio::any_io_executor executor,
                                              ClientConfig config, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Every verb comes with and without its options: no defaulted `= {}` aggregate argument,
  // because GCC 12 destroys such a temporary twice inside a co_await expression. Callers in
  // coroutines pass a named options object, or none.
  Task<Object> get(Resource res, std::string ns, std::string name);
  Task<Object> get(Resource res, std::string ns, std::string name, RequestOptions opt);
  // One page (or everything when limit is 0).
  Task<ObjectList> list(Resource res, std::string ns);
  Task<ObjectList> list(Resource res, std::string ns, ListOptions opt);
  // Follows continue tokens; Gone when a token expired meanwhile (list again from scratch).
  Task<ObjectList> list_all(Resource res, std::string ns);
  Task<ObjectList> list_all(Resource res, std::string ns, ListOptions opt);
  Task<Object> create(Resource res, std::string ns, std::string body);
  Task<Object> create(Resource res, std::string ns, std::string body, RequestOptions opt);
  Task<Object> update(Resource res, std::string ns, std::string name, std::string body);
  Task<Object> update(Resource res, std::string ns, std::string name, std::string body,
                      RequestOptions opt);
  Task<Object> patch(Resource res, std::string ns, std::string name, PatchType type,
                     std::string body);
  Task<Object> patch(Resource res, std::string ns, std::string name, PatchType type,
                     std::string body, RequestOptions opt);
  // The answer is the object (with deletionTimestamp when graceful) or a success Status.
  Task<Object> remove(Resource res, std::string ns, std::string name);
  Task<Object> remove(Resource res, std::string ns, std::string name, DeleteOptions opt);
  // Shorthands for the status subresource (priority Status).
  Task<Object> update_status(Resource res, std::string ns, std::string name, std::string body);
  Task<Object> patch_status(Resource res, std::string ns, std::string name, PatchType type,
                            std::string body);
  // TokenRequest: POST serviceaccounts/<sa>/token.
  Task<Object> create_token(std::string ns, std::string service_account, std::string token_request);

  // Streams events into `sink` as they arrive until the server ends the watch (success), the
  // sink returns false (success), or the stream fails. A watch ERROR event (e.g. 410 Expired)
  // is passed to the sink like any other; the server closes the stream after it.
  Task<void> watch(Resource res, std::string ns, WatchOptions opt, WatchDecoder::Sink sink);

  // Any request; non-2xx answers are returned, not turned into errors.
  Task<Response> request(std::string method, std::string target, std::string body = {},
                         std::string content_type = {}, Priority priority = Priority::Bulk);

  boost::asio::any_io_executor executor() const;
  const ClientConfig& config() const;
  RateLimiter& limiter();
  std::size_t connections_opened() const;
  std::size_t idle_connections() const;

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgehub::kube

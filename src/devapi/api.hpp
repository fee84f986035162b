// Maps one HTTP request onto the store: URL layout, query parameters, content types and the
// Status error for everything that goes wrong. Watches are returned as a plan for the
// connection to stream.
#pragma once

#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <edgehub/devapi/server.hpp>
#include <edgehub/devapi/store.hpp>
#include <edgehub/metrics/metrics.hpp>
#include <optional>
#include <string>

#include "table.hpp"

namespace edgehub::devapi::detail {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;

struct Reply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
};

struct WatchPlan {
  const ResourceInfo* resource = nullptr;
  WatchOptions options;
  std::chrono::seconds timeout{0};
  std::string table_version;  // non-empty: each event's object is a meta.k8s.io Table (kubectl -w)
  IncludeObject table_include = IncludeObject::Metadata;
};

struct Routed {
  Reply reply;                     // used when !watch
  std::optional<WatchPlan> watch;  // a watch to stream on this connection
};

class Api {
 public:
  Api(Store& store, const ServerOptions& options);

  // Never throws: errors become Status replies.
  Routed handle(const HttpRequest& request, const std::string& server_address);

  static Reply error_reply(const ApiError& error);

 private:
  void log_request(const HttpRequest& request, const std::string& verb, const std::string& group,
                   const std::string& resource, const std::string& subresource,
                   const std::string& ns, const std::string& name);

  // What a request is, for apiserver_request_total: filled in as far as routing got.
  struct Labels {
    std::string verb, group, resource, subresource;
  };
  Routed route(const HttpRequest& request, const std::string& server_address, Labels& labels);
  void count(const Labels& labels, unsigned code);

  Store& store_;
  const ServerOptions& options_;
  metrics::Registry metrics_;
  metrics::Family<metrics::Counter>& requests_;
  std::mutex log_mutex_;
  std::ofstream log_;  // open when request logging is on
};

}  // namespace edgehub::devapi::detail

#pragma once
// A synchronous view of kube::Client for the e2e driver and checker: one request at a time
// from any thread, answered as JSON. The client runs on its own I/O thread.

#include <boost/asio/io_context.hpp>
#include <edgehub/kube/client.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace edgehub::e2e {

using nlohmann::json;

struct ApiReply {
  int status = 0;  // 0: no answer (transport failure; `body` says why)
  json body;
  bool ok() const { return status >= 200 && status < 300; }
};

class Api {
 public:
  explicit Api(const std::string& kubeconfig);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // One request; retried for a few seconds while the API server does not answer at all
  // (it restarts in scenario 6). content_type defaults to JSON for bodies.
  ApiReply call(const std::string& method, const std::string& target, const json& body = nullptr,
                const std::string& content_type = "application/json");
  ApiReply get(const std::string& target) { return call("GET", target); }
  ApiReply merge_patch(const std::string& target, const json& patch) {
    return call("PATCH", target, patch, "application/merge-patch+json");
  }

 private:
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  std::thread thread_;
};

}  // namespace edgehub::e2e

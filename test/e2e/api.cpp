#include "api.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <edgehub/kube/config.hpp>
#include <stdexcept>

namespace edgehub::e2e {

namespace asio = boost::asio;

namespace {

// Named parameters only: no aggregate temporaries inside co_await (GCC 12).
asio::awaitable<kube::Result<kube::Response>> do_request(std::shared_ptr<kube::Client> client,
                                                         std::string method, std::string target,
                                                         std::string body,
                                                         std::string content_type) {
  auto result = co_await client->request(std::move(method), std::move(target), std::move(body),
                                         std::move(content_type), kube::Priority::Bulk);
  co_return result;
}

}  // namespace

Api::Api(const std::string& kubeconfig) {
  auto config = kube::load_kubeconfig(kubeconfig);
  if (!config) throw std::runtime_error("e2e: kubeconfig: " + config.error().describe());
  kube::ClientOptions options;
  options.qps = 0;  // the driver paces itself
  options.request_timeout = std::chrono::seconds(20);
  options.connect_timeout = std::chrono::seconds(2);
  auto client = kube::Client::make(io_.get_executor(), *config, options);
  if (!client) throw std::runtime_error("e2e: kube client: " + client.error().describe());
  client_ = *client;
  thread_ = std::thread([this] {
    auto guard = asio::make_work_guard(io_);
    io_.run();
  });
}

Api::~Api() {
  io_.stop();
  thread_.join();
  // The client's sockets belong to io_, which is stopped: destroyed here, on this thread.
  client_.reset();
}

ApiReply Api::call(const std::string& method, const std::string& target, const json& body,
                   const std::string& content_type) {
  const std::string text = body.is_null() ? std::string() : body.dump();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (;;) {
    auto future = asio::co_spawn(io_,
                                 do_request(client_, method, target, text,
                                            text.empty() ? std::string() : content_type),
                                 asio::use_future);
    const auto result = future.get();
    if (result) {
      ApiReply reply;
      reply.status = result->status;
      reply.body = json::parse(result->body, nullptr, false);
      if (reply.body.is_discarded()) reply.body = result->body;
      return reply;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return ApiReply{0, json(method + " " + target + ": " + result.error().describe())};
    }
    // The API server is down (being restarted): try again shortly.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace edgehub::e2e

// Upstream's admission: at most maxUpstreamInProgress edge requests in progress; the others
// wait by priority (leases first). Against the embedded API server, whose answers to event
// creates are held back to keep the one slot busy.
#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/upstream.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>

#include "api_client.hpp"

namespace edgehub::hub {
namespace {

wire::Message request(std::string operation, std::string resource, std::string content) {
  wire::Message m;
  m.header.msg_id = operation + " " + resource;
  m.route = {.source = "edged", .group = "resource", .operation = std::move(operation),
             .resource = std::move(resource)};
  m.content = std::move(content);
  return m;
}

class UpstreamAdmission : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.start();
    client_ = test::api_client(api_, io_, "upstream");
    upstream_ = std::make_unique<Upstream>(*client_, index_, metrics_, "", 1);
  }

  devapi::ServerOptions api_options() {
    devapi::ServerOptions options;
    options.response_delay = [this](std::string_view method, std::string_view target) {
      const bool event = method == "POST" && target.find("/events") != std::string_view::npos;
      return std::chrono::milliseconds(event ? slow_events_ms_.load() : 0);
    };
    return options;
  }

  void submit(std::string name, wire::Message m) {
    upstream_->submit("edge-1", std::move(m), [this, name](std::exception_ptr e, UpstreamResult) {
      if (!e) finished_.push_back(name);
    });
  }

  double queued() {
    const auto text = metrics_.expose();
    const std::string name = "\nedgehub_upstream_requests_queued ";
    const auto at = text.find(name);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size()));
  }

  void run_until(const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(10));
    }
  }

  std::atomic<int> slow_events_ms_{0};
  devapi::Server api_{api_options()};
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  metrics::Registry metrics_;
  RoutingIndex index_;
  std::unique_ptr<Upstream> upstream_;
  std::vector<std::string> finished_;
};

TEST_F(UpstreamAdmission, BeyondTheLimitRequestsWaitAndLeasesGoFirst) {
  const std::string event =
      R"({"metadata":{"name":"e1","namespace":"default"},"involvedObject":{"kind":"Node","name":"edge-1"},"reason":"Test"})";
  slow_events_ms_ = 400;  // the first request keeps the one slot
  submit("event-1", request("insert", "default/event/e1", event));
  io_.restart();
  io_.run_for(std::chrono::milliseconds(20));
  submit("event-2", request("insert", "default/event/e2", event));
  submit("lease", request("query", "kube-node-lease/lease/edge-1", "null"));
  io_.restart();
  io_.poll();
  EXPECT_EQ(queued(), 2) << "both wait for the slot";
  run_until([&] { return finished_.size() == 3; });
  ASSERT_EQ(finished_.size(), 3u);
  EXPECT_EQ(finished_[0], "event-1");
  EXPECT_EQ(finished_[1], "lease") << "a lease never waits behind bulk requests";
  EXPECT_EQ(finished_[2], "event-2");
  EXPECT_EQ(queued(), 0);
}

TEST_F(UpstreamAdmission, RequestsAnsweredWithoutTheApiNeedNoSlot) {
  slow_events_ms_ = 400;
  const std::string event =
      R"({"metadata":{"name":"e1","namespace":"default"},"involvedObject":{"kind":"Node","name":"edge-1"},"reason":"Test"})";
  submit("event", request("insert", "default/event/e1", event));
  io_.restart();
  io_.run_for(std::chrono::milliseconds(20));
  submit("unknown", request("query", "default/widget/w", "null"));
  io_.restart();
  io_.poll();
  ASSERT_EQ(finished_.size(), 1u);
  EXPECT_EQ(finished_[0], "unknown") << "an unsupported request is answered at once";
  run_until([&] { return finished_.size() == 2; });
  EXPECT_EQ(finished_.size(), 2u);
}

}  // namespace
}  // namespace edgehub::hub

// Upstream's admission: at most maxUpstreamInProgress edge requests in progress; the others
// wait by class shares (leases first) and in turn between nodes. Against the embedded API
// server, whose answers to event creates (and to one node's lease reads) are held back to keep
// slots busy.
#include <boost/asio/io_context.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/upstream.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <algorithm>
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
    upstream_ = std::make_unique<Upstream>(*client_, index_, *metrics_, "",
                                           UpstreamLimits{.max_in_progress = 1});
  }

  devapi::ServerOptions api_options() {
    devapi::ServerOptions options;
    options.response_delay = [this](std::string_view method, std::string_view target) {
      const bool event = method == "POST" && target.find("/events") != std::string_view::npos;
      const bool flood = method == "GET" && target.find("/leases/flood") != std::string_view::npos;
      return std::chrono::milliseconds(event ? slow_events_ms_.load()
                                             : flood ? slow_flood_ms_.load() : 0);
    };
    return options;
  }

  void submit(std::string name, wire::Message m, std::string node = "edge-1") {
    upstream_->submit(std::move(node), "127.0.0.7:40000", std::move(m),
                      [this, name](std::exception_ptr e, UpstreamResult r) {
                        if (!e) finished_.push_back(name);
                        if (r.reply && r.reply->content.find("TooManyRequests") != std::string::npos)
                          ++refused_;
                      });
  }
  void restart_with(UpstreamLimits limits) {
    upstream_.reset();
    metrics_ = std::make_unique<metrics::Registry>();
    upstream_ = std::make_unique<Upstream>(*client_, index_, *metrics_, "", limits);
  }

  double queued(const std::string& series = "edgehub_upstream_requests_queued") {
    const auto text = metrics_->expose();
    const std::string name = "\n" + series + " ";
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
  std::atomic<int> slow_flood_ms_{0};
  int refused_ = 0;
  devapi::Server api_{api_options()};
  boost::asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  std::unique_ptr<metrics::Registry> metrics_ = std::make_unique<metrics::Registry>();
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

// One node flooding lease reads (each held by the API) takes at most its share of the slots:
// another node's lease renewal starts at once instead of behind the whole flood.
TEST_F(UpstreamAdmission, AFloodingNodeDoesNotDelayAnotherNodesLease) {
  restart_with({.max_in_progress = 8, .max_in_progress_per_node = 4});
  slow_flood_ms_ = 100;
  for (int i = 0; i < 40; ++i) {
    submit("flood-" + std::to_string(i), request("query", "kube-node-lease/lease/flood", "null"),
           "flood");
  }
  io_.restart();
  io_.poll();
  EXPECT_EQ(queued(), 36) << "the flooding node holds 4 slots, its other requests wait";
  submit("edge-2", request("query", "kube-node-lease/lease/edge-2", "null"), "edge-2");
  EXPECT_EQ(queued(), 36) << "another node's lease takes a free slot at once";
  run_until([&] { return finished_.size() == 41; });
  ASSERT_EQ(finished_.size(), 41u);
  const auto at = std::find(finished_.begin(), finished_.end(), "edge-2") - finished_.begin();
  EXPECT_LE(at, 4) << "edge-2's lease finished behind at most the flood's first slots";
}

// The bytes of waiting requests are bounded: beyond hub.maxUpstreamQueuedBytes new requests
// are answered 429 at once, and the queue drains.
TEST_F(UpstreamAdmission, WaitingBytesAreBounded) {
  restart_with({.max_in_progress = 1, .max_waiting_bytes = 64 * 1024});
  slow_events_ms_ = 50;
  const std::string big(10 * 1024, 'x');
  for (int i = 0; i < 20; ++i) {
    // Events the node authorization lets through, so that each one waits for the API.
    const auto n = std::to_string(i);
    const std::string event = R"({"metadata":{"name":"e)" + n +
                              R"(","namespace":"default"},"involvedObject":{"kind":"Node","name":"node-)" +
                              n + R"("},"reason":"Test","message":")" + big + R"("})";
    submit("event-" + n, request("insert", "default/event/e" + n, event), "node-" + n);
  }
  io_.restart();
  io_.poll();
  EXPECT_LE(queued("edgehub_upstream_queued_bytes"), 64 * 1024);
  EXPECT_GT(queued("edgehub_upstream_queued_bytes"), 0);
  EXPECT_EQ(refused_, 20 - 1 - static_cast<int>(queued()));
  EXPECT_GT(refused_, 10);
  run_until([&] { return finished_.size() == 20; });
  EXPECT_EQ(finished_.size(), 20u);
  EXPECT_EQ(queued("edgehub_upstream_queued_bytes"), 0);
  EXPECT_NE(metrics_->expose().find(R"(edgehub_upstream_refused_total{reason="queue_bytes"})"),
            std::string::npos);
}

// Edge-chosen strings never become label values.
// A node sending events beyond the kubelet's own limit (eventRecordQPS, eventBurst): the rest
// are dropped and counted before they take a slot; another node's events are recorded.
TEST_F(UpstreamAdmission, EventsBeyondANodesBudgetAreDroppedAndOtherNodesRecordTheirs) {
  restart_with({.max_in_progress = 4, .event_qps = 0.0001, .event_burst = 5});
  auto event = [](const std::string& node, int i) {
    const auto name = node + "." + std::to_string(i);
    return request("insert", "default/event/" + name,
                   R"({"metadata":{"name":")" + name + R"(","namespace":"default"},)"
                   R"("involvedObject":{"kind":"Node","name":")" + node + R"("},"reason":"Test"})");
  };
  for (int i = 0; i < 20; ++i) submit("chatty-" + std::to_string(i), event("chatty", i), "chatty");
  for (int i = 0; i < 2; ++i) submit("quiet-" + std::to_string(i), event("quiet", i), "quiet");
  run_until([&] { return finished_.size() == 22; });
  ASSERT_EQ(finished_.size(), 22u);
  const auto events = api_.store().list("events", "default")["items"];
  int chatty = 0, quiet = 0;
  for (const auto& e : events) {
    const auto name = e["involvedObject"]["name"].get<std::string>();
    chatty += name == "chatty" ? 1 : 0;
    quiet += name == "quiet" ? 1 : 0;
  }
  EXPECT_EQ(chatty, 5) << "the burst, then (almost) no rate";
  EXPECT_EQ(quiet, 2);
  EXPECT_EQ(queued("edgehub_upstream_events_dropped_total"), 15);
}

TEST_F(UpstreamAdmission, EdgeChosenStringsAreNoLabels) {
  submit("a", request("frobnicate-1234", "default/gizmo-5678/x", "null"));
  submit("b", request("insert", "default/widget-91011/x", "null"));
  submit("c", request("query", "bad resource \x01", "null"));
  io_.restart();
  io_.poll();
  ASSERT_EQ(finished_.size(), 3u);
  const auto text = metrics_->expose();
  for (const char* chosen : {"frobnicate", "gizmo", "widget", "bad resource"}) {
    EXPECT_EQ(text.find(chosen), std::string::npos) << chosen << " in\n" << text;
  }
  EXPECT_NE(text.find(R"(edgehub_upstream_requests_total{operation="other",type="other",result="unsupported"} 1)"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace edgehub::hub

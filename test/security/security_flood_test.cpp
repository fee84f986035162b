// A compromised edge floods the hub with requests (issue #16, item 8): thousands of large
// requests, as fast as its socket takes them. Its session stops reading at
// hub.maxRequestsInFlightPerNode requests unanswered (TCP holds the rest back), so the hub's
// waiting queue and its bytes stay bounded; the flood holds at most its share of the slots, so
// another edge's Lease renewals still complete; being throttled by the hub never counts as the
// flooder's silence (no keepalive timeout). Edge-chosen strings never become metric labels.
// Real hub, real mutual TLS, the embedded API server on loopback.
#include <edgehub/logging/logging.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <sstream>
#include <thread>

#include "edge.hpp"
#include "hubs.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using test::Edge;

constexpr std::uint32_t kInFlightPerNode = 32;
constexpr std::uint64_t kQueueBytes = 8u << 20;

devapi::ServerOptions slow_flooder_leases() {
  devapi::ServerOptions options;
  // The flooder's own Lease reads are held by the API, so its requests keep their slots.
  options.response_delay = [](std::string_view method, std::string_view target) {
    const bool flood = method == "GET" && target.find("/leases/flooder") != std::string_view::npos;
    return std::chrono::milliseconds(flood ? 200 : 0);
  };
  return options;
}

class Flood : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = hubs_.options("flood-test");
    options.config.hub.io_threads = 2;
    options.config.hub.max_upstream_in_progress = 16;
    options.config.hub.max_requests_in_flight_per_node = kInFlightPerNode;
    options.config.hub.max_upstream_queued_bytes = kQueueBytes;
    options.config.hub.keepalive_timeout = 3s;
    hub_ = &hubs_.start(std::move(options));
  }
  double metric(const std::string& series) { return test::metric(*hub_, series); }

  test::InProcessHubs hubs_{"security-flood", slow_flooder_leases()};
  Hub* hub_ = nullptr;
};

// A request the flooder may make (a read of its own Lease), made large by its content.
std::string lease_read(std::size_t i, const std::string& padding) {
  wire::Message m;
  m.header.msg_id = "flood-" + std::to_string(i);
  m.header.timestamp = 1;
  m.route = {.source = "edged", .group = "meta", .operation = "query",
             .resource = "kube-node-lease/lease/flooder"};
  m.set_content_string(padding);
  return wire::encode(m);
}

// edgecore's keepalive (only keepalives count as liveness, as in cloudcore).
std::string keepalive(std::size_t i) {
  wire::Message m;
  m.header.msg_id = "keepalive-" + std::to_string(i);
  m.header.timestamp = 1;
  m.route = {.source = "websocket", .group = "resource", .operation = "keepalive",
             .resource = "node"};
  m.content = "\"ping\"";
  return wire::encode(m);
}

TEST_F(Flood, AFloodingEdgeIsThrottledWhileAnotherEdgesLeasesRenew) {
  constexpr std::size_t kRequests = 2000;
  const std::string padding(128 * 1024, 'x');  // 2,000 of them: 256 MiB
  std::atomic<bool> flooding{true};
  std::size_t written = 0;
  std::thread flooder([&] {
    Edge edge(hubs_.ca(), hub_->edge_port(), "flooder");
    // Its keepalives go on as edgecore's timer sends them, among the requests: held in TCP
    // with them while the hub pauses its read, they must not make it look silent.
    written = edge.flood(
        [&](std::size_t i) { return i % 8 == 0 ? keepalive(i) : lease_read(i, padding); },
        kRequests, 8s);
    flooding = false;
  });

  Edge steady(hubs_.ca(), hub_->edge_port(), "steady");
  auto lease = steady.request("query", "kube-node-lease/lease/steady", "null");
  lease = steady.request(
      "insert", "kube-node-lease/lease/steady",
      R"({"metadata":{"name":"steady","namespace":"kube-node-lease"},"spec":{"holderIdentity":"steady","leaseDurationSeconds":40}})");
  ASSERT_EQ(lease.route.operation, "response") << lease.content;
  double most_waiting = 0;
  double most_bytes = 0;
  int renewals = 0;
  while (flooding) {
    steady.send("keepalive", "node", "\"ping\"", "resource", "websocket");
    const auto renewed = steady.request(
        "update", "kube-node-lease/lease/steady",
        R"({"metadata":{"name":"steady","namespace":"kube-node-lease"},"spec":{"holderIdentity":"steady","leaseDurationSeconds":40}})");
    EXPECT_EQ(renewed.route.operation, "response") << renewed.content;
    EXPECT_EQ(renewed.content.find("TooManyRequests"), std::string::npos);
    ++renewals;
    most_waiting = std::max(most_waiting, metric("edgehub_upstream_requests_queued"));
    most_bytes = std::max(most_bytes, metric("edgehub_upstream_queued_bytes"));
    std::this_thread::sleep_for(200ms);
  }
  flooder.join();

  // The hub read no more than its limit ahead of the answers: the rest stayed in TCP buffers.
  EXPECT_LT(written, kRequests / 2) << "the hub kept reading the flood";
  EXPECT_LE(most_waiting, kInFlightPerNode) << "requests waiting, all nodes";
  EXPECT_LE(most_bytes, static_cast<double>(kQueueBytes));
  EXPECT_GT(most_waiting, 0) << "the flood did fill its share";
  EXPECT_GE(renewals, 5) << "the other edge's Lease renewals kept completing";
  EXPECT_EQ(metric(R"(edgehub_session_closes_total{reason="keepalive_timeout"})"), 0)
      << "a session the hub throttles is not silent";
}

TEST_F(Flood, EdgeChosenStringsAreNeitherLabelsNorWholeLogLines) {
  std::ostringstream log;
  logging::setup("info", "text", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  Edge edge(hubs_.ca(), hub_->edge_port(), "labeller");
  const std::string op = "op-" + std::string(300, 'o') + "-chosen-by-the-edge";
  const auto reply = edge.request(op, "default/type-chosen-by-the-edge/x", "null");
  EXPECT_EQ(reply.route.operation, "error");
  edge.request("insert", "default/another-type-chosen-by-the-edge/x", "null");
  // And a refusal: another node's Lease.
  edge.request("query", "kube-node-lease/lease/someone-else", "null");
  const std::string text = hub_->metrics().expose();
  EXPECT_EQ(text.find("chosen-by-the-edge"), std::string::npos) << text;
  EXPECT_GE(metric(R"(edgehub_upstream_requests_total{operation="other",type="other",result="unsupported"})"), 1);
  EXPECT_GE(metric(R"(edgehub_upstream_requests_total{operation="insert",type="other",result="unsupported"})"), 1);
  logging::setup("info", "text");
  // Each line names the node and the peer address; the edge's 300-character operation is cut.
  const auto lines = log.str();
  EXPECT_NE(lines.find("node labeller from 127.0.0.1:"), std::string::npos) << lines;
  EXPECT_NE(lines.find("refused query lease"), std::string::npos) << lines;
  EXPECT_NE(lines.find("unsupported request op-oooo"), std::string::npos) << lines;
  EXPECT_EQ(lines.find(op), std::string::npos) << lines;
}

}  // namespace
}  // namespace edgehub::hub

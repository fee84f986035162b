// Denial of service against a real replica (in process, real TLS on loopback): input that
// crashed it (a non-UTF-8 byte in /debug/nodes, 100,000 nested arrays in edge content) and
// connections that hold its pre-authentication slots (idle or slow edge connections, a
// flooded admin port). Every test asserts what is refused and that real clients still get
// through; none asserts a duration.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "edge.hpp"
#include "hubs.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using test::Edge;
using test::eventually;

// A TCP connection to 127.0.0.1:`port` from `source` (127.0.0.2 stands for an attacker's
// address, the tests' real clients use 127.0.0.1).
tcp::socket dial(asio::io_context& io, std::uint16_t port, const char* source = "127.0.0.1") {
  tcp::socket socket(io);
  socket.open(tcp::v4());
  socket.bind(tcp::endpoint(asio::ip::make_address(source), 0));
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return socket;
}

// Sends `request` as is and reads until the server closes; empty if it answered nothing.
std::string http_exchange(std::uint16_t port, const std::string& request) {
  asio::io_context io;
  auto socket = dial(io, port);
  asio::write(socket, asio::buffer(request));
  std::string answer;
  boost::system::error_code ec;
  asio::read(socket, asio::dynamic_buffer(answer), ec);
  return answer;
}

std::string get(std::uint16_t port, const std::string& target) {
  return http_exchange(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
}

// Whether the server closed `socket` (a read ends in EOF or reset) within `limit`.
bool closed_by_server(tcp::socket& socket, std::chrono::milliseconds limit) {
  timeval tv{static_cast<time_t>(limit.count() / 1000),
             static_cast<suseconds_t>((limit.count() % 1000) * 1000)};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char byte = 0;
  const auto n = ::recv(socket.native_handle(), &byte, 1, 0);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

class DenialOfService : public ::testing::Test {
 protected:
  Hub& start(const std::function<void(HubOptions&)>& configure = nullptr) {
    auto options = hubs_.options("dos-test");
    options.config.hub.io_threads = 1;
    if (configure) configure(options);
    return hubs_.start(std::move(options));
  }
  double rejected(Hub& hub, const std::string& reason) {
    return test::metric(hub, "edgehub_rejected_connections_total{reason=\"" + reason + "\"}");
  }
  // `count` connections to the edge port from 127.0.0.2, each sending `first_bytes` (none: an
  // idle connection): all but hub.maxPendingPerAddress (`per_address`) are closed at once, and
  // an edge from another address still gets its lease answered. The flood, still open.
  std::vector<tcp::socket> flood_edge_port(asio::io_context& io, Hub& hub, int count,
                                           int per_address, std::string_view first_bytes) {
    std::vector<tcp::socket> flood;
    for (int i = 0; i < count; ++i) {
      flood.push_back(dial(io, hub.edge_port(), "127.0.0.2"));
      if (!first_bytes.empty()) asio::write(flood.back(), asio::buffer(first_bytes));
    }
    EXPECT_TRUE(eventually([&] { return rejected(hub, "address_limit") == count - per_address; }));
    Edge edge(ca_, hub.edge_port(), "edge-real");
    EXPECT_EQ(edge.request("query", "kube-node-lease/lease/edge-real", "null").route.operation,
              "response");
    return flood;
  }

  test::InProcessHubs hubs_{"dos-test"};
  const net::CertAndKey& ca_ = hubs_.ca();
};

TEST_F(DenialOfService, DebugNodesWithANonUtf8ByteIsAnsweredAndTheReplicaLives) {
  auto& hub = start();
  const auto answer = http_exchange(
      hub.admin_port(),
      "GET /debug/nodes?node=edge\x80\xff HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_TRUE(get(hub.admin_port(), "/healthz").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(get(hub.admin_port(), "/debug/nodes?node=edge-1").starts_with("HTTP/1.1 200"));
}

TEST_F(DenialOfService, DebugIsServedOnlyToMetricsDebugFrom) {
  auto& hub = start([](HubOptions& o) { o.config.metrics.debug_from = {"10.0.0.0/8"}; });
  EXPECT_TRUE(get(hub.admin_port(), "/debug/nodes").starts_with("HTTP/1.1 403"));
  EXPECT_TRUE(get(hub.admin_port(), "/metrics").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(get(hub.admin_port(), "/healthz").starts_with("HTTP/1.1 200"));
  EXPECT_EQ(test::metric(hub, R"(edgehub_http_refusals_total{server="admin",reason="debug_forbidden"})"),
            1);
}

// JSON in a JSON string is parsed by the hub; dumped or copied, 100,000 levels overflowed
// the I/O or API thread's stack.
TEST_F(DenialOfService, DeeplyNestedContentIsRefusedAndTheSessionStays) {
  auto& hub = start();
  Edge edge(ca_, hub.edge_port(), "edge-deep");
  const std::string deep = R"({"reason":)" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
  wire::Message content;
  content.set_content_string(deep);
  // Events are unanswered (as cloudcore's): refused without a reply.
  edge.send("insert", "default/event/edge-deep.1", content.content);
  // A node status patch is answered: with an error.
  const auto reply = edge.request("patch", "null/nodepatch/edge-deep", content.content);
  EXPECT_EQ(reply.route.operation, "response");
  EXPECT_FALSE(reply.content_json()["Err"].is_null()) << reply.content.substr(0, 200);
  // The session and the replica go on.
  const auto lease = edge.request("query", "kube-node-lease/lease/edge-deep", "null");
  EXPECT_EQ(lease.route.operation, "response");
  EXPECT_EQ(hub.sessions(), 1u);
}

// Idle connections wait for their first byte without a handshake slot, are capped per
// source address and closed after hub.helloTimeout.
TEST_F(DenialOfService, IdleConnectionsBeyondTheHandshakeSlotsKeepNoEdgeOut) {
  auto& hub = start([](HubOptions& o) {
    o.config.hub.max_concurrent_handshakes = 2;
    o.config.hub.max_pending_per_address = 16;
    o.config.hub.hello_timeout = 1s;
  });
  asio::io_context io;
  // Beyond 16 from one address: closed at once.
  auto idle = flood_edge_port(io, hub, 40, 16, {});
  // The 16 that were let in are closed when hub.helloTimeout passes without a byte.
  int closed = 0;
  for (auto& s : idle) closed += closed_by_server(s, 10s) ? 1 : 0;
  EXPECT_EQ(closed, 40);
  EXPECT_TRUE(eventually([&] { return rejected(hub, "idle_timeout") == 16; }));
}

// Connections that send a byte and stall hold a handshake slot until hub.handshakeTimeout;
// the per-address cap keeps one address from holding them all.
TEST_F(DenialOfService, StalledHandshakesFromOneAddressKeepNoEdgeOut) {
  auto& hub = start([](HubOptions& o) {
    o.config.hub.max_concurrent_handshakes = 4;
    o.config.hub.max_pending_per_address = 2;
    o.config.hub.handshake_timeout = 60s;
  });
  asio::io_context io;
  const auto stalled = flood_edge_port(io, hub, 10, 2, "\x16");  // a TLS record's first byte
}

// 1,100 connections (more than the admin server's 1,024) from one address: the per-address
// cap and the connections reserved for probes keep /healthz and /readyz answering.
TEST_F(DenialOfService, ProbesAnswerWhileTheAdminPortIsFlooded) {
  auto& hub = start();
  asio::io_context io;
  std::vector<tcp::socket> flood;
  for (int i = 0; i < 1100; ++i) flood.push_back(dial(io, hub.admin_port(), "127.0.0.2"));
  EXPECT_TRUE(eventually([&] {
    return test::metric(hub, R"(edgehub_http_refusals_total{server="admin",reason="address_limit"})") >=
           1100 - 64;
  }));
  EXPECT_TRUE(get(hub.admin_port(), "/healthz").starts_with("HTTP/1.1 200"));
  EXPECT_TRUE(get(hub.admin_port(), "/readyz").starts_with("HTTP/1.1 200"));
}

}  // namespace
}  // namespace edgehub::hub

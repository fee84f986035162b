// The edge port end to end on loopback: real TLS with client certificates, real WebSocket.
#include <edgehub/hub/listener.hpp>
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "edge_client.hpp"
#include "test_pki.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using test::EdgeClient;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;

// Records what the listener reports; the test thread waits on it.
class RecordingHost : public SessionHost {
 public:
  void on_open(const std::shared_ptr<Session>& s) override {
    if (on_open_hook) on_open_hook(s);
    std::lock_guard lock(mutex_);
    opened.push_back(s);
    cv_.notify_all();
  }
  void on_request(const std::shared_ptr<Session>& s, wire::Message m) override {
    // Answer node registration like the hub does, to check the reply path.
    s->send(wire::make_response(m, wire::object_resp("null")));
    std::lock_guard lock(mutex_);
    requests.push_back(std::move(m));
    cv_.notify_all();
  }
  void on_delivered(Session&, const Change& c, std::chrono::steady_clock::duration) override {
    std::lock_guard lock(mutex_);
    delivered.push_back(c.uid);
    cv_.notify_all();
  }
  void on_closed(Session& s, CloseReason r) override {
    std::lock_guard lock(mutex_);
    closed.emplace_back(s.node(), r);
    cv_.notify_all();
  }
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, pred);
  }

  std::function<void(const std::shared_ptr<Session>&)> on_open_hook;
  std::vector<std::shared_ptr<Session>> opened;
  std::vector<wire::Message> requests;
  std::vector<std::string> delivered;
  std::vector<std::pair<std::string, CloseReason>> closed;
  std::mutex mutex_;
  std::condition_variable cv_;
};

class ListenerTest : public ::testing::Test {
 protected:
  void start(ListenerOptions options = {}, bool tls = true) {
    options.host = "127.0.0.1";
    options.port = 0;
    if (tls) options.tls = std::make_shared<net::TlsContext>(pki_.server_context());
    for (auto& io : ios_) {
      executors_.push_back(io.get_executor());
      guards_.emplace_back(io.get_executor());
    }
    listener_ = std::make_unique<Listener>(executors_, options, host_, [this](Rejection r) {
      std::lock_guard lock(host_.mutex_);
      rejections_[static_cast<std::size_t>(r)].fetch_add(1);
      host_.cv_.notify_all();
    });
    listener_->start();
    for (auto& io : ios_) threads_.emplace_back([&io] { io.run(); });
  }
  void TearDown() override {
    if (listener_) listener_->stop_accepting();
    for (auto& s : host_.opened) {
      asio::post(s->executor(), [s] { s->close(CloseReason::shutdown); });
    }
    guards_.clear();
    for (auto& io : ios_) io.stop();
    for (auto& t : threads_) t.join();
    listener_.reset();
  }
  EdgeClient<net::TlsStream> tls_client(const net::TlsContext& ctx) {
    net::TlsStream stream(client_io_.get_executor(), ctx);
    stream.socket().connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    stream.set_server_name("127.0.0.1", true);
    EdgeClient<net::TlsStream> client(std::move(stream));
    bool done = false;
    error_code ec;
    client.ws().next_layer().async_handshake(net::HandshakeRole::client,
                                             [&](error_code e, std::size_t) {
                                               ec = e;
                                               done = true;
                                             });
    client.run_until(client_io_, [&] { return done; });
    handshake_error_ = ec;
    return client;
  }
  std::size_t rejected(Rejection r) { return rejections_[static_cast<std::size_t>(r)].load(); }
  // Polled: nothing notifies when a pending place is given back.
  bool pending_drops_to_zero() {
    for (int i = 0; i < 1000 && listener_->pending() != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return listener_->pending() == 0;
  }
  static std::string keepalive() {
    return R"({"header":{"msg_id":"k1","timestamp":1},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"})"
           "\n";
  }

  net::testing::TestPki pki_;
  std::array<asio::io_context, 2> ios_;
  std::vector<asio::any_io_executor> executors_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<Listener> listener_;
  RecordingHost host_;
  std::array<std::atomic<std::size_t>, kRejectionCount> rejections_{};
  asio::io_context client_io_;
  error_code handshake_error_;
};

TEST_F(ListenerTest, EdgeConnectsSendsRequestsAndGetsReplies) {
  start();
  auto client = tls_client(pki_.client_context());
  ASSERT_FALSE(handshake_error_) << handshake_error_.message();
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  ASSERT_TRUE(host_.wait([&] { return host_.opened.size() == 1; }));
  EXPECT_EQ(host_.opened[0]->node(), "edge-1");
  client.send(client_io_, keepalive());
  client.send(client_io_,
              R"({"header":{"msg_id":"a1","timestamp":1},"route":{"source":"edged","group":"meta","operation":"insert","resource":"null/node/edge-1"},"content":{"metadata":{"name":"edge-1"}}})");
  const auto reply = client.read(client_io_);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->header.parent_msg_id, "a1");
  EXPECT_EQ(reply->content, R"({"Object":null,"Err":null})");
  ASSERT_TRUE(host_.wait([&] { return host_.requests.size() == 1; }));
  EXPECT_EQ(host_.requests[0].route.resource, "null/node/edge-1") << "keepalives are not requests";
  EXPECT_EQ(listener_->connections(), 1u);
}

TEST_F(ListenerTest, DeliversObjectsAndCompletesThemOnAck) {
  host_.on_open_hook = [](const std::shared_ptr<Session>& s) {
    s->enqueue(Change{.kind = ObjectKind::pod, .ns = "default", .name = "web", .uid = "u1",
                      .resource_version = 7, .operation = "insert",
                      .object = std::make_shared<const std::string>(R"({"kind":"Pod"})")});
  };
  start();
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  const auto pod = client.read(client_io_);
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->route.resource, "default/pod/web");
  EXPECT_EQ(pod->header.resource_version, "7");
  client.send(client_io_, wire::encode(wire::make_ack(*pod, 2)));
  ASSERT_TRUE(host_.wait([&] { return host_.delivered.size() == 1; }));
  EXPECT_EQ(host_.delivered[0], "u1");
}

// The session reads a message's first byte into itself and the rest into its buffer: a
// message split over frames, a large one and back-to-back ones all arrive whole and in order.
TEST_F(ListenerTest, FragmentedLargeAndBackToBackMessagesArriveWhole) {
  start();
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  const auto request = [](const std::string& id, const std::string& content) {
    return R"({"header":{"msg_id":")" + id +
           R"(","timestamp":1},"route":{"source":"edged","group":"meta","operation":"update","resource":"default/podstatus/web"},"content":")" +
           content + R"("})";
  };
  const std::string split = request("f1", std::string(3000, 'a'));
  const std::string large = request("l1", std::string(300 * 1024, 'b'));
  // One message in three frames.
  auto& ws = client.ws();
  ws.text(true);
  bool done = false;
  error_code ec;
  const std::size_t third = split.size() / 3;
  ws.async_write_some(false, asio::buffer(split.data(), third), [&](error_code e, std::size_t) {
    ec = e;
    ws.async_write_some(false, asio::buffer(split.data() + third, third),
                        [&](error_code e2, std::size_t) {
                          ec = e2;
                          ws.async_write_some(true, asio::buffer(split.data() + 2 * third,
                                                                 split.size() - 2 * third),
                                              [&](error_code e3, std::size_t) {
                                                ec = e3;
                                                done = true;
                                              });
                        });
  });
  client.run_until(client_io_, [&] { return done; });
  ASSERT_FALSE(ec) << ec.message();
  client.send(client_io_, large);
  client.send(client_io_, keepalive());
  client.send(client_io_, request("s1", "x"));
  ASSERT_TRUE(host_.wait([&] { return host_.requests.size() == 3; }));
  EXPECT_EQ(host_.requests[0].header.msg_id, "f1");
  EXPECT_EQ(host_.requests[0].content_string().value_or(""), std::string(3000, 'a'));
  EXPECT_EQ(host_.requests[1].header.msg_id, "l1");
  EXPECT_EQ(host_.requests[1].content_string().value_or(""), std::string(300 * 1024, 'b'));
  EXPECT_EQ(host_.requests[2].header.msg_id, "s1");
  EXPECT_EQ(host_.opened[0]->counters().keepalives, 1u);
  EXPECT_EQ(host_.opened[0]->counters().messages_in, 4u);
  EXPECT_EQ(host_.opened[0]->counters().bytes_in,
            split.size() + large.size() + keepalive().size() + request("s1", "x").size());
}

// A change from a watch event is timed from the event to its frame on the socket; replies
// and objects read by a list are not.
TEST_F(ListenerTest, TimesWatchEventsToTheSocket) {
  auto metrics = std::make_shared<SessionMetrics>();
  metrics::Histogram latency(metrics::latency_buckets());
  metrics->internal_latency = &latency;
  host_.on_open_hook = [](const std::shared_ptr<Session>& s) {
    const auto object = std::make_shared<const std::string>(R"({"kind":"Pod"})");
    s->enqueue(Change{.kind = ObjectKind::pod, .ns = "default", .name = "watched", .uid = "u1",
                      .resource_version = 7, .operation = "insert", .object = object,
                      .received = SteadyClock::now()});
    s->enqueue(Change{.kind = ObjectKind::pod, .ns = "default", .name = "listed", .uid = "u2",
                      .resource_version = 8, .operation = "update", .object = object});
  };
  ListenerOptions o;
  o.session.metrics = metrics;
  start(o);
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  ASSERT_TRUE(client.read(client_io_));
  ASSERT_TRUE(client.read(client_io_));
  // The write's completion runs on the hub's thread, possibly just after the edge read it.
  for (int i = 0; i < 500 && latency.count() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(latency.count(), 1u);
  EXPECT_GT(latency.sum(), 0.0);
}

TEST_F(ListenerTest, CertificateForAnotherNodeIsRefusedBeforeTheUpgrade) {
  start();
  auto client = tls_client(pki_.client_context());  // CN system:node:edge-1
  std::string body;
  EXPECT_EQ(client.upgrade(client_io_, "edge-2", &body), 403);
  EXPECT_NE(body.find("CN \"system:node:edge-1\" does not match \"system:node:edge-2\""),
            std::string::npos)
      << body;
  EXPECT_EQ(rejected(Rejection::identity_mismatch), 1u);
  EXPECT_TRUE(host_.opened.empty());
}

TEST_F(ListenerTest, ClientWithoutCertificateIsRefused) {
  start();
  auto client = tls_client(pki_.client_context(/*with_cert=*/false));
  // TLS 1.3: the client learns of the refusal on its first read or write.
  if (!handshake_error_) {
    EXPECT_NE(client.upgrade(client_io_, "edge-1"), 101);
  }
  // The server's side finishes on its own thread.
  EXPECT_TRUE(host_.wait([&] { return rejected(Rejection::tls_handshake) == 1; }));
  EXPECT_TRUE(host_.opened.empty());
}

TEST_F(ListenerTest, MissingOrInvalidNodeIdIsABadRequest) {
  start();
  auto client = tls_client(pki_.client_context());
  std::string body;
  EXPECT_EQ(client.upgrade(client_io_, "Edge_1", &body), 400);
  EXPECT_NE(body.find("not a valid node name"), std::string::npos) << body;
  EXPECT_EQ(rejected(Rejection::bad_request), 1u);
}

TEST_F(ListenerTest, ConnectionCapAnswers503) {
  start({.max_connections = 1});
  auto first = tls_client(pki_.client_context());
  ASSERT_EQ(first.upgrade(client_io_, "edge-1"), 101);
  auto second = tls_client(pki_.client_context());
  std::string body;
  EXPECT_EQ(second.upgrade(client_io_, "edge-1", &body), 503);
  EXPECT_NE(body.find("connection limit (1) reached"), std::string::npos) << body;
  EXPECT_EQ(rejected(Rejection::capacity), 1u);
}

// A connection that sends nothing holds no handshake slot and is closed after hello_timeout.
TEST_F(ListenerTest, SilentConnectionIsClosedAfterTheHelloTimeout) {
  start({.max_concurrent_handshakes = 2, .hello_timeout = 100ms});
  asio::ip::tcp::socket silent(client_io_);
  silent.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  // Meanwhile an edge gets a slot.
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  char byte;
  error_code ec;
  silent.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_TRUE(host_.wait([&] { return rejected(Rejection::idle_timeout) == 1; }));
  EXPECT_TRUE(pending_drops_to_zero());
}

// Over max_pending (or max_pending_per_address) a connection is closed at once, and places
// are given back when connections end.
TEST_F(ListenerTest, PendingConnectionsAreCapped) {
  start({.max_pending = 2, .max_pending_per_address = 2});
  std::vector<asio::ip::tcp::socket> silent;
  for (int i = 0; i < 3; ++i) {
    silent.emplace_back(client_io_);
    silent.back().connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  }
  EXPECT_TRUE(host_.wait([&] {
    return rejected(Rejection::pending_limit) + rejected(Rejection::address_limit) == 1;
  }));
  for (auto& s : silent) s.close();
  EXPECT_TRUE(pending_drops_to_zero());
  auto client = tls_client(pki_.client_context());
  EXPECT_EQ(client.upgrade(client_io_, "edge-1"), 101);
}

// The process keeps file descriptors for the rest: edge connections (sessions and pending
// ones) beyond max_edge_descriptors are closed at once, and places come back when they end.
TEST_F(ListenerTest, EdgeConnectionsLeaveTheProcessItsDescriptors) {
  start({.max_edge_descriptors = 2});
  auto edge = tls_client(pki_.client_context());
  ASSERT_EQ(edge.upgrade(client_io_, "edge-1"), 101);
  std::vector<asio::ip::tcp::socket> silent;
  for (int i = 0; i < 2; ++i) {
    silent.emplace_back(client_io_);
    silent.back().connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  }
  EXPECT_TRUE(host_.wait([&] { return rejected(Rejection::descriptors) == 1; }));
  EXPECT_EQ(rejected(Rejection::pending_limit), 0u);
  for (auto& s : silent) s.close();
  EXPECT_TRUE(pending_drops_to_zero());
  auto second = tls_client(pki_.client_context());
  EXPECT_EQ(second.upgrade(client_io_, "edge-1"), 101);
}

TEST_F(ListenerTest, MissingKeepaliveClosesTheSession) {
  ListenerOptions o;
  o.session.keepalive_timeout = 100ms;
  start(o);
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  EXPECT_FALSE(client.read(client_io_));
  EXPECT_EQ(client.close_reason().code, websocket::close_code::normal);
  ASSERT_TRUE(host_.wait([&] { return host_.closed.size() == 1; }));
  EXPECT_EQ(host_.closed[0].second, CloseReason::keepalive_timeout);
  EXPECT_TRUE(host_.wait([&] { return listener_->connections() == 0; }));
}

// One timer serves the keepalive deadline and delivery retries: keepalives only move the
// deadline, and the timer, armed for an earlier one, re-arms itself.
TEST_F(ListenerTest, KeepalivesHoldTheSessionPastTheTimeout) {
  ListenerOptions o;
  o.session.keepalive_timeout = 500ms;
  start(o);
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    client.send(client_io_, keepalive());
    const auto next = std::chrono::steady_clock::now() + 100ms;
    client.run_until(client_io_, [next] { return std::chrono::steady_clock::now() >= next; });
  }
  {
    std::lock_guard lock(host_.mutex_);
    EXPECT_TRUE(host_.closed.empty()) << "keepalives every 100 ms hold a 500 ms timeout";
  }
  EXPECT_FALSE(client.read(client_io_));  // then silence
  ASSERT_TRUE(host_.wait([&] { return host_.closed.size() == 1; }));
  EXPECT_EQ(host_.closed[0].second, CloseReason::keepalive_timeout);
}

TEST_F(ListenerTest, UnackedObjectIsSentAgainWhileKeepalivesArrive) {
  ListenerOptions o;
  o.session.keepalive_timeout = 10s;
  o.session.delivery.retry_interval = 100ms;
  host_.on_open_hook = [](const std::shared_ptr<Session>& s) {
    s->enqueue(Change{.kind = ObjectKind::pod, .ns = "default", .name = "web", .uid = "u1",
                      .resource_version = 7, .operation = "insert",
                      .object = std::make_shared<const std::string>(R"({"kind":"Pod"})")});
  };
  start(o);
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  const auto first = client.read(client_io_);
  ASSERT_TRUE(first);
  client.send(client_io_, keepalive());
  const auto again = client.read(client_io_);
  ASSERT_TRUE(again) << "the retry comes before the keepalive deadline";
  EXPECT_EQ(again->route.resource, "default/pod/web");
  EXPECT_EQ(again->header.resource_version, "7");
  client.send(client_io_, wire::encode(wire::make_ack(*again, 2)));
  ASSERT_TRUE(host_.wait([&] { return host_.delivered.size() == 1; }));
  std::lock_guard lock(host_.mutex_);
  EXPECT_TRUE(host_.closed.empty());
}

TEST_F(ListenerTest, UndecodableMessageClosesWithProtocolError) {
  start();
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  client.send(client_io_, R"({"header":{"timestamp":1.5},"route":{}})");
  EXPECT_FALSE(client.read(client_io_));
  EXPECT_EQ(client.close_reason().code, websocket::close_code::protocol_error);
  ASSERT_TRUE(host_.wait([&] { return host_.closed.size() == 1; }));
  EXPECT_EQ(host_.closed[0].second, CloseReason::bad_message);
}

TEST_F(ListenerTest, EdgecoreGoodbyeMessageIsTolerated) {
  start();
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  client.send(client_io_, R"({"header":{"msg_id":"","timestamp":0},"route":{},"content":null})");
  client.send(client_io_,
              R"({"header":{"msg_id":"a2","timestamp":1},"route":{"source":"edged","group":"meta","operation":"query","resource":"kube-node-lease/lease/edge-1"},"content":null})");
  ASSERT_TRUE(client.read(client_io_)) << "still connected after the empty message";
  ASSERT_TRUE(host_.wait([&] { return host_.requests.size() == 1; }));
  EXPECT_EQ(host_.opened[0]->counters().empty_messages, 1u);
}

TEST_F(ListenerTest, SlowReaderIsDisconnected) {
  host_.on_open_hook = [](const std::shared_ptr<Session>& s) {
    const std::string big(256 * 1024, 'x');
    for (int i = 0; i < 64 && !s->closed(); ++i) s->send(big);
  };
  ListenerOptions o;
  o.session.write_queue_bytes = 1 << 20;
  start(o);
  auto client = tls_client(pki_.client_context());
  ASSERT_EQ(client.upgrade(client_io_, "edge-1"), 101);
  ASSERT_TRUE(host_.wait([&] { return host_.closed.size() == 1; }));
  EXPECT_EQ(host_.closed[0].second, CloseReason::slow_reader);
}

TEST_F(ListenerTest, ProxyModeTrustsOnlyConfiguredPeers) {
  start({.identity_header = "X-Client-Cert-CN", .trusted_proxies = {"127.0.0.0/8"}}, false);
  {
    beast::tcp_stream stream(client_io_);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener_->port()));
    EdgeClient<beast::tcp_stream> client(std::move(stream));
    ASSERT_EQ(client.upgrade(client_io_, "edge-9", nullptr,
                             {{"X-Client-Cert-CN", "system:node:edge-9"}}),
              101);
    ASSERT_TRUE(host_.wait([&] { return host_.opened.size() == 1; }));
  }
  {
    beast::tcp_stream stream(client_io_);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener_->port()));
    EdgeClient<beast::tcp_stream> client(std::move(stream));
    std::string body;
    EXPECT_EQ(client.upgrade(client_io_, "edge-9", &body), 403) << "no identity header";
    EXPECT_NE(body.find("forwarded identity (X-Client-Cert-CN) \"\" does not match"),
              std::string::npos)
        << body;
  }
}

TEST_F(ListenerTest, ProxyModeRefusesUntrustedPeers) {
  start({.trusted_proxies = {"10.0.0.0/8"}}, false);
  beast::tcp_stream stream(client_io_);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener_->port()));
  EdgeClient<beast::tcp_stream> client(std::move(stream));
  std::string body;
  EXPECT_EQ(client.upgrade(client_io_, "edge-9", &body), 403);
  EXPECT_NE(body.find("127.0.0.1 is not a trusted proxy"), std::string::npos) << body;
  EXPECT_EQ(rejected(Rejection::untrusted_proxy), 1u);
}

// An ingress that terminates the edges' TLS and speaks TLS to the hub with a client
// certificate of its own, from a CA that is not the edge CA (hub.proxy.clientCAFile).
class ProxyTlsTest : public ListenerTest {
 protected:
  void start_behind_ingress(std::vector<std::string> trusted = {}) {
    ListenerOptions o{.identity_header = "X-Client-Cert-CN",
                      .trusted_proxies = std::move(trusted),
                      .proxy_client_names = {"ingress-nginx"}};
    o.tls = std::make_shared<net::TlsContext>(
        net::TlsContext::server({.cert_chain_pem = net::to_pem(pki_.server.cert.get()),
                                 .private_key_pem = net::to_pem(pki_.server.key.get()),
                                 .client_ca_pem = net::to_pem(ingress_ca_.cert.get())}));
    start(std::move(o), false);
  }
  net::TlsContext ingress_context(const std::string& cn) const {
    const auto cert = net::mint(net::testing::TestPki::request(cn, net::CertUsage::client),
                                {ingress_ca_.cert.get(), ingress_ca_.key.get()});
    return net::TlsContext::client({.ca_pem = net::to_pem(pki_.ca.cert.get()),
                                    .cert_chain_pem = net::to_pem(cert.cert.get()),
                                    .private_key_pem = net::to_pem(cert.key.get())});
  }
  // The upgrade for `node` with `identity` forwarded: true when a session was opened. A
  // refusal's body goes to `body`.
  bool upgraded(const net::TlsContext& ctx, const std::string& node, const std::string& identity,
                std::string* body = nullptr) {
    auto client = tls_client(ctx);
    // A TLS 1.3 client learns that its certificate was refused when it reads.
    return !handshake_error_ &&
           client.upgrade(client_io_, node, body, {{"X-Client-Cert-CN", identity}}) == 101;
  }

  net::CertAndKey ingress_ca_ = net::mint(net::testing::TestPki::request("ingress-ca", net::CertUsage::ca));
};

TEST_F(ProxyTlsTest, TheIdentityIsReadOnlyFromTheIngressCertificate) {
  start_behind_ingress();
  std::string body;
  EXPECT_TRUE(upgraded(ingress_context("ingress-nginx"), "edge-9", "system:node:edge-9"));
  ASSERT_TRUE(host_.wait([&] { return host_.opened.size() == 1; }));
  EXPECT_EQ(host_.opened[0]->node(), "edge-9");

  // Another certificate of the ingress CA is not the ingress.
  EXPECT_FALSE(upgraded(ingress_context("someone"), "edge-9", "system:node:edge-9", &body));
  EXPECT_NE(body.find("client certificate CN \"someone\" is not a trusted proxy (hub.proxy.clientNames)"),
            std::string::npos)
      << body;
  EXPECT_EQ(rejected(Rejection::untrusted_proxy), 1u);

  // The ingress forwards the identity it verified; a node_id that differs is refused.
  EXPECT_FALSE(upgraded(ingress_context("ingress-nginx"), "edge-8", "system:node:edge-9", &body));
  EXPECT_NE(body.find("forwarded identity (X-Client-Cert-CN) \"system:node:edge-9\" does not match"),
            std::string::npos)
      << body;
  EXPECT_EQ(rejected(Rejection::identity_mismatch), 1u);

  // An edge's own certificate (the edge CA) is no ingress's: the handshake fails. So it does
  // for a client without a certificate, and for one speaking plain text.
  EXPECT_FALSE(upgraded(pki_.client_context(), "edge-1", "system:node:edge-1"));
  EXPECT_FALSE(upgraded(pki_.client_context(false), "edge-1", "system:node:edge-1"));
  {
    beast::tcp_stream stream(client_io_);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), listener_->port()));
    EdgeClient<beast::tcp_stream> plain(std::move(stream));
    EXPECT_NE(plain.upgrade(client_io_, "edge-1", nullptr, {{"X-Client-Cert-CN", "system:node:edge-1"}}),
              101);
  }
  ASSERT_TRUE(host_.wait([&] { return rejected(Rejection::tls_handshake) == 3; }))
      << rejected(Rejection::tls_handshake);
  EXPECT_EQ(host_.opened.size(), 1u);
}

TEST_F(ProxyTlsTest, TrustedAddressesStillApplyWhenSet) {
  start_behind_ingress({"10.0.0.0/8"});
  std::string body;
  EXPECT_FALSE(upgraded(ingress_context("ingress-nginx"), "edge-9", "system:node:edge-9", &body));
  EXPECT_NE(body.find("127.0.0.1 is not a trusted proxy"), std::string::npos) << body;
  EXPECT_EQ(rejected(Rejection::untrusted_proxy), 1u);
}

}  // namespace
}  // namespace edgehub::hub

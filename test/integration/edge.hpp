#pragma once
// An edge for in-process integration tests: speaks edgecore's protocol over real mutual TLS,
// ACKs what needs an ACK (unless told not to) and keeps everything it received.
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/wire/builders.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "edge_client.hpp"

namespace edgehub::hub {

using namespace std::chrono_literals;
namespace asio = boost::asio;

// Polls a condition that has no event to wait on (an API object changing), with a deadline.
template <class Pred>
inline bool eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// One edge, acting as edgecore does: ACKs what needs an ACK (unless told not to) and keeps
// everything it received.
class Edge {
 public:
  // Connects over mutual TLS with a client certificate for `node` signed by `ca`, upgrades
  // like edgecore and sends a first keepalive.
  Edge(const net::CertAndKey& ca, std::uint16_t port, const std::string& node);

  wire::Message request(const std::string& op, const std::string& resource, std::string content,
                        const std::string& group = "meta", const std::string& source = "edged") {
    wire::Message m;
    m.header.msg_id = wire::new_message_id();
    m.header.timestamp = wire::now_millis();
    m.route = {.source = source, .group = group, .operation = op, .resource = resource};
    m.content = std::move(content);
    client_.send(io_, wire::encode(m));
    const auto id = m.header.msg_id;
    return next([&](const wire::Message& r) { return r.header.parent_msg_id == id; });
  }

  // Reads until a message matches; throws on timeout or a closed connection.
  template <class Pred>
  wire::Message next(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error(node_ + ": no matching message in time");
      auto m = client_.read(io_, left);
      if (!m) throw std::runtime_error(node_ + ": connection closed: " + client_.error().message());
      received.push_back(*m);
      if (ack && wire::needs_ack(*m)) client_.send(io_, wire::encode(wire::make_ack(*m, wire::now_millis())));
      if (pred(*m)) return *m;
    }
  }
  wire::Message next_object(const std::string& op, const std::string& resource) {
    return next([&](const wire::Message& m) {
      return m.route.operation == op && m.route.resource == resource;
    });
  }
  std::size_t count(const std::string& op, const std::string& resource) const {
    return std::count_if(received.begin(), received.end(), [&](const wire::Message& m) {
      return m.route.operation == op && m.route.resource == resource;
    });
  }
  void close() { boost::system::error_code ec; client_.ws().next_layer().socket().close(ec); }
  // Reads (and ACKs) until the hub closes the connection; its close code, or nullopt if the
  // connection stayed open for `limit`.
  std::optional<int> wait_close(std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      std::optional<wire::Message> m;
      try {
        m = client_.read(io_, left);
      } catch (const std::runtime_error&) {
        return std::nullopt;  // still open at the deadline
      }
      if (!m) return static_cast<int>(client_.close_reason().code);
      received.push_back(*m);
      if (ack && wire::needs_ack(*m)) client_.send(io_, wire::encode(wire::make_ack(*m, wire::now_millis())));
    }
  }

  bool ack = true;
  std::vector<wire::Message> received;

 private:
  std::string node_;
  asio::io_context io_;
  std::unique_ptr<net::TlsContext> tls_;
  testing::EdgeClient<net::TlsStream> client_;

  static testing::EdgeClient<net::TlsStream> connect(asio::io_context& io, net::TlsContext& tls,
                                                     std::uint16_t port) {
    net::TlsStream stream(io.get_executor(), tls);
    stream.socket().connect({asio::ip::make_address("127.0.0.1"), port});
    stream.set_server_name("127.0.0.1", true);
    return testing::EdgeClient<net::TlsStream>(std::move(stream));
  }
};

inline Edge::Edge(const net::CertAndKey& ca, std::uint16_t port, const std::string& node)
    : node_(node),
      tls_([&] {
        auto client_cert = net::mint_node_client_cert(node, {ca.cert.get(), ca.key.get()});
        return std::make_unique<net::TlsContext>(net::TlsContext::client(
            {.ca_pem = net::to_pem(ca.cert.get()),
             .cert_chain_pem = net::to_pem(client_cert.cert.get()),
             .private_key_pem = net::to_pem(client_cert.key.get())}));
      }()),
      client_(connect(io_, *tls_, port)) {
  bool done = false;
  boost::system::error_code ec;
  client_.ws().next_layer().async_handshake(net::HandshakeRole::client,
                                            [&](boost::system::error_code e, std::size_t) {
                                              ec = e;
                                              done = true;
                                            });
  client_.run_until(io_, [&] { return done; });
  if (ec) throw std::runtime_error("TLS handshake: " + ec.message());
  if (const int status = client_.upgrade(io_, node); status != 101) {
    throw std::runtime_error("upgrade answered " + std::to_string(status));
  }
  // Like edgecore: a keepalive right away.
  client_.send(io_, R"({"header":{"msg_id":"k","timestamp":1},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"})");
}


}  // namespace edgehub::hub

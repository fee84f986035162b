#pragma once
// One edge as edgecore behaves on the wire, for the deploy tests: mutual TLS with a node
// certificate signed by the given CA, the upgrade, a keepalive, requests and their replies;
// ACKs what needs an ACK.

#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/message.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge_client.hpp"

namespace edgehub::test::deploy {

class Edge {
 public:
  Edge(const std::string& ca_pem, const std::string& ca_key_pem, std::uint16_t port,
       const std::string& node)
      : node_(node), tls_(make_tls(ca_pem, ca_key_pem, node)), client_(connect(*tls_, port)) {
    bool done = false;
    boost::system::error_code ec;
    client_.ws().next_layer().async_handshake(net::HandshakeRole::client,
                                              [&](boost::system::error_code e, std::size_t) {
                                                ec = e;
                                                done = true;
                                              });
    client_.run_until(io_, [&] { return done; });
    if (ec) throw std::runtime_error(node + ": TLS handshake: " + ec.message());
    if (const int status = client_.upgrade(io_, node); status != 101) {
      throw std::runtime_error(node + ": upgrade answered " + std::to_string(status));
    }
    client_.send(io_, R"({"header":{"msg_id":"k","timestamp":1},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"})");
  }

  std::string send(const std::string& op, const std::string& resource, std::string content) {
    wire::Message m;
    m.header.msg_id = wire::new_message_id();
    m.header.timestamp = wire::now_millis();
    m.route = {.source = "edged", .group = "meta", .operation = op, .resource = resource};
    m.content = std::move(content);
    client_.send(io_, wire::encode(m));
    return m.header.msg_id;
  }

  // Sends a request and reads until its reply.
  wire::Message request(const std::string& op, const std::string& resource, std::string content) {
    const auto id = send(op, resource, std::move(content));
    return next([&](const wire::Message& r) { return r.header.parent_msg_id == id; });
  }

  // An object message for `resource` (insert, or update when a resync sent it), received
  // before or now.
  wire::Message next_object(const std::string& resource) {
    auto match = [&](const wire::Message& m) {
      return (m.route.operation == "insert" || m.route.operation == "update") &&
             m.route.resource == resource;
    };
    const auto seen = std::find_if(received_.begin(), received_.end(), match);
    if (seen != received_.end()) return *seen;
    return next(match);
  }

  void close() {
    boost::system::error_code ec;
    client_.ws().next_layer().socket().close(ec);
  }

 private:
  template <class Pred>
  wire::Message next(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error(node_ + ": no matching message in time");
      auto m = client_.read(io_, left);
      if (!m) throw std::runtime_error(node_ + ": connection closed: " + client_.error().message());
      received_.push_back(*m);
      if (wire::needs_ack(*m)) client_.send(io_, wire::encode(wire::make_ack(*m, wire::now_millis())));
      if (pred(*m)) return *m;
    }
  }

  static std::unique_ptr<net::TlsContext> make_tls(const std::string& ca_pem,
                                                   const std::string& ca_key_pem,
                                                   const std::string& node) {
    const auto ca = net::cert_from_pem(ca_pem);
    const auto ca_key = net::key_from_pem(ca_key_pem);
    const auto cert = net::mint_node_client_cert(node, {ca.get(), ca_key.get()});
    return std::make_unique<net::TlsContext>(net::TlsContext::client(
        {.ca_pem = ca_pem,
         .cert_chain_pem = net::to_pem(cert.cert.get()),
         .private_key_pem = net::to_pem(cert.key.get())}));
  }

  hub::testing::EdgeClient<net::TlsStream> connect(net::TlsContext& tls, std::uint16_t port) {
    net::TlsStream stream(io_.get_executor(), tls);
    stream.socket().connect({boost::asio::ip::make_address("127.0.0.1"), port});
    stream.set_server_name("127.0.0.1", true);
    return hub::testing::EdgeClient<net::TlsStream>(std::move(stream));
  }

  std::string node_;
  boost::asio::io_context io_;
  std::unique_ptr<net::TlsContext> tls_;
  hub::testing::EdgeClient<net::TlsStream> client_;
  std::vector<wire::Message> received_;
};

}  // namespace edgehub::test::deploy

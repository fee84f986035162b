#pragma once
// One edge for in-process hub tests, acting as edgecore does over real mutual TLS: a client
// certificate for its node, the upgrade, a keepalive; ACKs what needs an ACK (unless told not
// to) the way edgecore's modules do, and keeps everything it received.
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/message.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "edge_client.hpp"
#include "eventually.hpp"

namespace edgehub::test {

// A device or device model object (KUBEEDGE-WIRE §10).
inline bool is_device_object(const wire::Message& m) {
  return m.route.resource.find("/device/") != std::string::npos ||
         m.route.resource.find("/devicemodel/") != std::string::npos;
}

class Edge {
 public:
  // A client certificate for `node` signed by `ca`.
  Edge(const net::CertAndKey& ca, std::uint16_t port, const std::string& node)
      : Edge(net::to_pem(ca.cert.get()), net::mint_node_client_cert(node, {ca.cert.get(), ca.key.get()}),
             port, node) {}
  // The same from the CA as PEM files hold it (a deployment's pki/ca.crt and ca.key).
  Edge(const std::string& ca_pem, const std::string& ca_key_pem, std::uint16_t port,
       const std::string& node)
      : Edge(ca_pem, mint_from_pem(ca_pem, ca_key_pem, node), port, node) {}

  // Sends a message from the edge; its id.
  std::string send(const std::string& op, const std::string& resource, std::string content,
                   const std::string& group = "meta", const std::string& source = "edged") {
    wire::Message m;
    m.header.msg_id = wire::new_message_id();
    m.header.timestamp = wire::now_millis();
    m.route = {.source = source, .group = group, .operation = op, .resource = resource};
    m.content = std::move(content);
    client_.send(io_, wire::encode(m));
    return m.header.msg_id;
  }
  // Sends a request and reads until its reply.
  wire::Message request(const std::string& op, const std::string& resource, std::string content,
                        const std::string& group = "meta", const std::string& source = "edged") {
    const auto id = send(op, resource, std::move(content), group, source);
    return next([&](const wire::Message& r) { return r.header.parent_msg_id == id; });
  }

  // Reads until a message matches; throws on timeout or a closed connection.
  template <class Pred>
  wire::Message next(Pred pred, std::optional<std::chrono::milliseconds> limit = std::nullopt) {
    const auto deadline = std::chrono::steady_clock::now() + limit.value_or(read_timeout);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) throw std::runtime_error(node_ + ": no matching message in time");
      auto m = client_.read(io_, left);
      if (!m) throw std::runtime_error(node_ + ": connection closed: " + client_.error().message());
      take(*m);
      if (pred(*m)) return *m;
    }
  }
  wire::Message next_object(const std::string& op, const std::string& resource) {
    return next([&](const wire::Message& m) {
      return m.route.operation == op && m.route.resource == resource;
    });
  }
  // An insert of `resource`, or an update when a resync sent it, received before or now.
  wire::Message inserted_or_resynced(const std::string& resource) {
    auto match = [&](const wire::Message& m) {
      return (m.route.operation == "insert" || m.route.operation == "update") &&
             m.route.resource == resource;
    };
    const auto seen = std::find_if(received.begin(), received.end(), match);
    if (seen != received.end()) return *seen;
    return next(match);
  }
  std::size_t count(const std::string& op, const std::string& resource) const {
    return std::count_if(received.begin(), received.end(), [&](const wire::Message& m) {
      return m.route.operation == op && m.route.resource == resource;
    });
  }

  void close() {
    boost::system::error_code ec;
    client_.ws().next_layer().socket().close(ec);
  }

  // A flood, as a compromised edge sends it: the messages `make(i)` written back to back,
  // nothing read, until `count` are written, a write fails or `limit` passes (a write the
  // hub's backpressure holds then ends with the connection). How many were written.
  std::size_t flood(const std::function<std::string(std::size_t)>& make, std::size_t count,
                    std::chrono::milliseconds limit) {
    std::size_t written = 0;
    bool pending = false;
    bool failed = false;
    std::string frame;
    std::function<void()> next = [&] {
      if (written == count || failed) return;
      frame = make(written);
      pending = true;
      client_.ws().text(true);
      client_.ws().async_write(boost::asio::buffer(frame),
                               [&](boost::system::error_code ec, std::size_t) {
                                 pending = false;
                                 if (ec) {
                                   failed = true;
                                   return;
                                 }
                                 ++written;
                                 next();
                               });
    };
    next();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pending && std::chrono::steady_clock::now() < deadline) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(20));
    }
    if (pending) close();
    while (pending) {
      io_.restart();
      io_.run_for(std::chrono::milliseconds(20));
    }
    return written;
  }
  // Reads (and ACKs) until the hub closes the connection; its close code, or nullopt if the
  // connection stayed open for `limit`.
  std::optional<int> wait_close(std::chrono::milliseconds limit = std::chrono::seconds(10)) {
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
      take(*m);
    }
  }

  bool ack = true;                                            // false: an edge that drops ACKs
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);  // next()'s default
  std::vector<wire::Message> received;

 private:
  Edge(const std::string& ca_pem, const net::CertAndKey& client_cert, std::uint16_t port,
       const std::string& node)
      : node_(node),
        tls_(std::make_unique<net::TlsContext>(net::TlsContext::client(
            {.ca_pem = ca_pem,
             .cert_chain_pem = net::to_pem(client_cert.cert.get()),
             .private_key_pem = net::to_pem(client_cert.key.get())}))),
        client_(tls_edge_client(io_, *tls_, port, handshake_error_)) {
    if (handshake_error_) {
      throw std::runtime_error(node + ": TLS handshake: " + handshake_error_.message());
    }
    if (const int status = client_.upgrade(io_, node); status != 101) {
      throw std::runtime_error(node + ": upgrade answered " + std::to_string(status));
    }
    // Like edgecore: a keepalive right away.
    client_.send(io_, R"({"header":{"msg_id":"k","timestamp":1},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"})");
  }

  static net::CertAndKey mint_from_pem(const std::string& ca_pem, const std::string& ca_key_pem,
                                       const std::string& node) {
    const auto ca = net::cert_from_pem(ca_pem);
    const auto ca_key = net::key_from_pem(ca_key_pem);
    return net::mint_node_client_cert(node, {ca.get(), ca_key.get()});
  }


  // Keeps a received message and ACKs it as edgecore's modules do (KUBEEDGE-WIRE §10.2):
  // devicetwin never ACKs twin-group messages, and the ACK of a device or device model insert
  // or delete comes from metamanager as `meta`/`twin`.
  void take(const wire::Message& m) {
    received.push_back(m);
    if (!ack || !wire::needs_ack(m) || m.route.group == "twin") return;
    auto reply = wire::make_ack(m, wire::now_millis());
    if (is_device_object(m) && m.route.operation != "update") {
      reply.route.source = "meta";
      reply.route.group = "twin";
    }
    client_.send(io_, wire::encode(reply));
  }

  std::string node_;
  boost::asio::io_context io_;
  std::unique_ptr<net::TlsContext> tls_;
  boost::system::error_code handshake_error_;  // before client_, which sets it
  EdgeClient<net::TlsStream> client_;
};

}  // namespace edgehub::test

#pragma once
// A small stand-in for the hub's edge port: WebSocket over net::TlsStream (or plain TCP),
// answering edge requests the way cloudcore does (KUBEEDGE-WIRE §3.3, §11). Used by the sim's
// tests, and by `edgehub-sim --serve` as the benchmark's accept/echo hub.

#include <cstdint>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/wire/message.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace edgehub::sim {

struct FakeHubOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;         // 0: any free port, see FakeHub::port()
  bool record = true;             // keep every message received (tests); off for --serve
  bool answer_requests = true;    // reply to lease / node / patch / query requests
  bool node_exists = false;       // answer node inserts with AlreadyExists
  int conflicting_lease_updates = 0;  // answer the first N lease updates 409 Conflict
  int backlog = 4096;
  std::string replica_header;     // non-empty: sent as X-Edgehub-Replica on the upgrade response
};

struct ReceivedMessage {
  std::string node;
  wire::Message message;
};

class FakeHub {
 public:
  // `tls` empty: plain WebSocket.
  FakeHub(FakeHubOptions options, std::optional<net::TlsContext> tls);
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  // Binds, listens and runs `threads` I/O threads. Throws if it cannot listen.
  void start(int threads = 1);
  void stop();
  std::uint16_t port() const;

  // Thread-safe views for tests.
  std::vector<ReceivedMessage> received() const;
  std::vector<wire::Message> received_from(const std::string& node) const;
  // Upgrade request headers of every accepted connection, in order, per connection.
  std::vector<std::vector<std::pair<std::string, std::string>>> upgrade_headers(
      const std::string& node) const;
  std::vector<std::string> client_common_names() const;
  std::size_t sessions() const;        // open now
  std::uint64_t accepted() const;      // upgrades since start
  std::uint64_t handshake_failures() const;
  std::uint64_t sessions_ended() const;  // upgraded connections that ended since start

  // Sends one message to a connected node; false if it has no session.
  bool send(const std::string& node, const wire::Message& message);
  // Closes the node's connection abruptly (TCP close, no close frame).
  bool drop(const std::string& node);
  // Objects served to configmap/secret queries: resource "<ns>/<type>/<name>" → object JSON.
  void put_object(const std::string& resource, std::string object_json,
                  std::string resource_version);

 public:
  struct Impl;  // shared with the session objects of fake_hub.cpp

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgehub::sim

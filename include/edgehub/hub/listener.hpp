#pragma once
// Listener: the edge port. One acceptor per I/O thread (SO_REUSEPORT), so a connection is
// pinned to the thread that accepted it. Each connection goes through: pending caps (all
// connections not yet a session, and per source address) → first byte within hello_timeout
// (an idle socket holds no handshake slot and no TLS state) → handshake slot (a bounded
// queue) → TLS handshake → HTTP upgrade request → identity check (client certificate CN
// `system:node:<node_id>`, or in proxy mode the forwarded identity from a trusted peer) →
// admission of the identity (revoked? a non-edge Node's name?) → Session; from the first
// byte to the upgrade, handshake_timeout. Refusals answer HTTP 403/400/503 with the reason or
// close the connection, are logged with the peer address and counted.

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <edgehub/hub/session.hpp>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace edgehub::hub {

struct ListenerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 10000;
  std::shared_ptr<net::TlsContext> tls;  // null: plain WebSocket behind a trusted proxy
  // Proxy mode: the edge's identity is the `identity_header` an ingress forwards. The ingress
  // is either a plain-text peer in `trusted_proxies`, or (`tls` and `proxy_client_names`)
  // a TLS client whose certificate, verified by `tls`, has one of `proxy_client_names` as
  // CN; `trusted_proxies`, when not empty, then limits its addresses as well.
  std::string identity_header = "X-Client-Cert-CN";
  std::vector<std::string> trusted_proxies;  // IPs or CIDRs
  std::vector<std::string> proxy_client_names;
  std::size_t max_connections = 19000;
  // File descriptors edge connections (pending and sessions) may hold at most, so that the
  // process keeps some for the API client, the admin port and its files; 0: no limit.
  std::size_t max_edge_descriptors = 0;
  std::size_t max_concurrent_handshakes = 256;
  // Accepted → first byte (the ClientHello). Idle sockets wait here without a handshake slot.
  std::chrono::milliseconds hello_timeout{5'000};
  // First byte → upgrade request read (time waiting for a handshake slot included).
  std::chrono::milliseconds handshake_timeout{10'000};
  // Connections accepted and not yet a session, in every stage; more are closed at once.
  std::size_t max_pending = 4096;
  // The same per source address, so that one address cannot take every slot; only useful
  // where edges reach the replica with their own addresses (not through an ingress).
  std::size_t max_pending_per_address = 4096;
  // After a TLS 1.3 handshake, free OpenSSL's per-connection state and keep only the traffic
  // keys (net::TlsStream::release_handshake_state).
  bool compact_tls_sessions = true;
  // After the identity matched, before the session exists: may this node (certificate
  // serial; "" in proxy mode) connect? Null: every matching identity may.
  pki::IdentityCheck identity_check;
  SessionOptions session;
};

// Why a connection was refused; the label of edgehub_rejected_connections_total.
enum class Rejection {
  capacity,          // max_connections reached (503)
  tls_handshake,     // TLS failed: no or bad client certificate, protocol error
  handshake_timeout, // TLS + upgrade not done in time
  bad_request,       // not a WebSocket upgrade, or no usable node_id header (400)
  identity_mismatch, // certificate CN is not system:node:<node_id> (403)
  untrusted_proxy,   // proxy mode: identity forwarded by an address not trusted (403)
  idle_timeout,      // nothing received within hello_timeout (closed)
  pending_limit,     // max_pending connections not yet sessions (closed at once)
  address_limit,     // max_pending_per_address from this address (closed at once)
  revoked,           // the node or its certificate serial is in the deny list (403)
  not_edge_node,     // a Node of that name exists and is not an edge node (403)
  unverifiable,      // the identity check could not reach the API (503)
  descriptors,       // edge connections would leave the process too few file descriptors
};
std::string_view to_string(Rejection rejection);
inline constexpr std::size_t kRejectionCount = 13;

class Listener {
 public:
  using OnReject = std::function<void(Rejection)>;

  // `executors`: one per I/O thread. Destroy the Listener only after those threads have
  // stopped running their io_contexts, and before the io_contexts themselves.
  Listener(std::vector<boost::asio::any_io_executor> executors, ListenerOptions options,
           SessionHost& host, OnReject on_reject = nullptr);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and accepts; throws std::runtime_error naming the address on failure.
  void start();
  // Stops accepting new connections; sessions stay.
  void stop_accepting();
  std::uint16_t port() const;
  // Connections being handshaken plus open sessions.
  std::size_t connections() const;
  std::size_t handshakes_in_progress() const;
  // Connections accepted and not yet sessions (waiting for a first byte or a slot, or
  // handshaking).
  std::size_t pending() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// DNS-1123 subdomain, as Kubernetes node names are, short enough for the certificate CN
// (pki::valid_node_name).
bool valid_node_name(std::string_view name);

}  // namespace edgehub::hub

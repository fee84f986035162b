#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <edgehub/hub/listener.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/net/address_range.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <stdexcept>
#include <mutex>

#include "websocket_session.hpp"

namespace edgehub::hub {

namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string_view to_string(Rejection r) {
  switch (r) {
    case Rejection::capacity: return "capacity";
    case Rejection::tls_handshake: return "tls_handshake";
    case Rejection::handshake_timeout: return "handshake_timeout";
    case Rejection::bad_request: return "bad_request";
    case Rejection::identity_mismatch: return "identity_mismatch";
    case Rejection::untrusted_proxy: return "untrusted_proxy";
    case Rejection::idle_timeout: return "idle_timeout";
    case Rejection::pending_limit: return "pending_limit";
    case Rejection::descriptors: return "descriptors";
    case Rejection::address_limit: return "address_limit";
    case Rejection::revoked: return "revoked";
    case Rejection::not_edge_node: return "not_edge_node";
    case Rejection::unverifiable: return "unverifiable";
  }
  return "unknown";
}

bool valid_node_name(std::string_view name) { return pki::valid_node_name(name); }

namespace {

// At most `per_second` log lines a second; the rest are counted and summarised.
class LogLimiter {
 public:
  bool allow() {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (now - window_ >= std::chrono::seconds(1)) {
      if (suppressed_ > 0) spdlog::info("edge listener: {} more refusals not logged", suppressed_);
      window_ = now;
      logged_ = 0;
      suppressed_ = 0;
    }
    if (logged_ < 20) {
      ++logged_;
      return true;
    }
    ++suppressed_;
    return false;
  }

 private:
  std::mutex mutex_;
  std::chrono::steady_clock::time_point window_{};
  int logged_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace

struct Listener::Impl : SessionHost, std::enable_shared_from_this<Impl> {
  // Sockets with the io_context's own executor type: the TLS sessions keep it (8 bytes where
  // any_io_executor takes 56) in every socket, timer and pending operation.
  using Executor = asio::io_context::executor_type;
  using Socket = net::TlsStream::socket_type;
  using Acceptor = asio::basic_socket_acceptor<tcp, Executor>;

  // A connection's place among the pending ones (and its address's); given back when the
  // connection becomes a session or is closed, wherever that happens.
  class PendingSlot {
   public:
    PendingSlot(std::shared_ptr<Impl> impl, asio::ip::address address)
        : impl_(std::move(impl)), address_(address) {}
    PendingSlot(PendingSlot&&) = default;
    PendingSlot& operator=(PendingSlot&&) = default;
    ~PendingSlot() {
      if (impl_) impl_->release_pending(address_);
    }

   private:
    std::shared_ptr<Impl> impl_;
    asio::ip::address address_;
  };

  // Sent its first byte, waiting for a handshake slot until `deadline`.
  struct Waiting {
    Socket socket;
    PendingSlot slot;
    std::string peer;
    asio::ip::address address;
    std::chrono::steady_clock::time_point deadline;
  };

  struct Worker {
    Executor executor;
    std::unique_ptr<Acceptor> acceptor;
    std::size_t handshaking = 0;          // on this worker's thread only
    std::deque<Waiting> waiting;          // bounded by max_pending
  };

  Impl(std::vector<asio::any_io_executor> executors, ListenerOptions o, SessionHost& h,
       OnReject r)
      : options(std::move(o)), host(h), on_reject(std::move(r)) {
    for (auto& ex : executors) {
      const auto* own = ex.target<Executor>();
      if (own == nullptr) {
        throw std::invalid_argument("edge listener: executors must be io_context executors");
      }
      workers.push_back(Worker{*own, nullptr, 0, {}});
    }
    for (const auto& text : options.trusted_proxies) {
      if (auto range = net::AddressRange::parse(text)) trusted.push_back(*range);
    }
    per_worker_handshakes =
        std::max<std::size_t>(1, options.max_concurrent_handshakes / workers.size());
  }

  // SessionHost, wrapping the real host to keep the connection count.
  void on_open(const std::shared_ptr<Session>& s) override { host.on_open(s); }
  void on_request(const std::shared_ptr<Session>& s, wire::Message m) override {
    host.on_request(s, std::move(m));
  }
  void on_delivered(Session& s, const Change& c, std::chrono::steady_clock::duration d) override {
    host.on_delivered(s, c, d);
  }
  void on_closed(Session& s, CloseReason r) override {
    connections.fetch_sub(1);
    host.on_closed(s, r);
  }

  void accept(Worker& w);
  void admit(Worker& w, Socket socket);
  void await_first_byte(Worker& w, Socket socket, PendingSlot slot, std::string peer,
                        asio::ip::address address);
  void take_slot(Worker& w, Waiting entry);
  void start_upgrade(Worker& w, Waiting entry);
  void handshake_done(Worker& w);
  bool acquire_pending(const asio::ip::address& address, Rejection& why);
  void release_pending(const asio::ip::address& address);
  void reject(Rejection r, const std::string& peer, const std::string& node,
              const std::string& why) {
    if (on_reject) on_reject(r);
    if (log_limiter.allow()) {
      spdlog::info("edge listener: refused {}{}: {} ({})", peer,
                   node.empty() ? "" : " node " + node, why, to_string(r));
    }
  }
  bool trusted_peer(const asio::ip::address& a) const { return net::any_contains(trusted, a); }
  // The identity is forwarded by an ingress (over plain text, or by one with a client
  // certificate).
  bool proxy_mode() const { return !options.tls || !options.proxy_client_names.empty(); }
  bool trusted_proxy_name(const std::string& cn) const {
    return std::find(options.proxy_client_names.begin(), options.proxy_client_names.end(), cn) !=
           options.proxy_client_names.end();
  }

  ListenerOptions options;
  SessionHost& host;
  OnReject on_reject;
  std::vector<Worker> workers;
  std::vector<net::AddressRange> trusted;
  std::size_t per_worker_handshakes = 1;
  std::mutex pending_mutex;
  std::size_t pending = 0;                                          // under pending_mutex
  std::unordered_map<asio::ip::address, std::size_t> pending_by_address;  // likewise
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> handshakes{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<bool> stopped{false};
  LogLimiter log_limiter;
};

namespace {

// One connection from accept to upgrade (or refusal).
template <class Stream>
class Upgrade : public std::enable_shared_from_this<Upgrade<Stream>> {
 public:
  Upgrade(std::shared_ptr<Listener::Impl> listener, Listener::Impl::Worker& worker,
          Stream stream, std::string peer, asio::ip::address peer_address, bool over_capacity,
          Listener::Impl::PendingSlot slot, std::chrono::steady_clock::time_point deadline)
      : listener_(std::move(listener)), worker_(worker), stream_(std::move(stream)),
        timer_(worker.executor), peer_(std::move(peer)), peer_address_(peer_address),
        over_capacity_(over_capacity), slot_(std::move(slot)), deadline_(deadline) {}

  void start() {
    timer_.expires_at(deadline_);
    timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->timed_out_ = true;
        error_code ignored;
        raw_socket(self->stream_).close(ignored);
      }
    });
    if constexpr (std::is_same_v<Stream, net::TlsStream>) {
      stream_.async_handshake(net::HandshakeRole::server,
                              [self = this->shared_from_this()](error_code ec, std::size_t) {
                                if (ec) {
                                  return self->fail(self->timed_out_ ? Rejection::handshake_timeout
                                                                     : Rejection::tls_handshake,
                                                    self->tls_reason(ec));
                                }
                                // The CN now: releasing the handshake state frees the
                                // peer's certificate.
                                self->identity_ = self->stream_.peer_common_name();
                                self->serial_ = net::serial_hex(
                                    SSL_get0_peer_certificate(self->stream_.native_handle()));
                                if (self->listener_->options.compact_tls_sessions) {
                                  self->stream_.release_handshake_state();
                                }
                                self->read_request();
                              });
    } else {
      read_request();
    }
  }

 private:
  std::string tls_reason(const error_code& ec) {
    if constexpr (std::is_same_v<Stream, net::TlsStream>) {
      const auto verify = stream_.verify_error();
      if (!verify.empty()) return "client certificate refused: " + verify;
    }
    return "TLS handshake failed: " + ec.message();
  }

  void read_request() {
    parser_.header_limit(8 * 1024);
    parser_.body_limit(0);
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) {
                       self->on_request(ec);
                     });
  }

  void on_request(error_code ec) {
    if (ec) {
      return fail(timed_out_ ? Rejection::handshake_timeout : Rejection::bad_request,
                  "reading the upgrade request: " + ec.message());
    }
    auto request = parser_.release();
    if (over_capacity_) {
      return refuse(http::status::service_unavailable, Rejection::capacity, "",
                    "edgehub: connection limit (" +
                        std::to_string(listener_->options.max_connections) +
                        ") reached on this replica; retry later or elsewhere");
    }
    if (!websocket::is_upgrade(request)) {
      return refuse(http::status::bad_request, Rejection::bad_request, "",
                    "edgehub: a WebSocket upgrade is required");
    }
    const auto node_header = request.find("node_id");
    const std::string node =
        node_header == request.end() ? std::string() : std::string(node_header->value());
    if (!valid_node_name(node)) {
      return refuse(http::status::bad_request, Rejection::bad_request, node,
                    node.empty() ? "edgehub: the node_id header is missing"
                                 : "edgehub: node_id \"" + node + "\" is not a valid node name");
    }
    const std::string want = "system:node:" + node;
    const bool proxied = listener_->proxy_mode();
    std::string identity = identity_;  // the client certificate's CN (TLS)
    if (proxied) {
      // Plain text: only from the trusted addresses. TLS: from an ingress's certificate, and
      // from the trusted addresses where they are set.
      const bool by_address = !std::is_same_v<Stream, net::TlsStream> || !listener_->trusted.empty();
      if (by_address && !listener_->trusted_peer(peer_address_)) {
        return refuse(http::status::forbidden, Rejection::untrusted_proxy, node,
                      "edgehub: " + peer_address_.to_string() +
                          " is not a trusted proxy (hub.proxy.trustedAddresses)");
      }
      if (std::is_same_v<Stream, net::TlsStream> && !listener_->trusted_proxy_name(identity_)) {
        return refuse(http::status::forbidden, Rejection::untrusted_proxy, node,
                      "edgehub: client certificate CN \"" + logging::field(identity_) +
                          "\" is not a trusted proxy (hub.proxy.clientNames)");
      }
      const auto it = request.find(listener_->options.identity_header);
      identity = it == request.end() ? std::string() : std::string(it->value());
      serial_.clear();  // the ingress's certificate, not the edge's
    }
    if (identity != want) {
      const std::string what =
          proxied ? "forwarded identity (" + listener_->options.identity_header + ")"
                  : std::string("client certificate CN");
      return refuse(http::status::forbidden, Rejection::identity_mismatch, node,
                    "edgehub: " + what + " \"" + logging::field(identity) + "\" does not match \"" + want + "\"");
    }
    if (!listener_->options.identity_check) return open_session(std::move(request), node);
    // Revoked, or a non-edge Node's name: refused before a session exists (it would displace
    // that name's session and act for it). The handshake timer keeps running meanwhile.
    auto pending = std::make_shared<http::request<http::string_body>>(std::move(request));
    listener_->options.identity_check(
        node, serial_,
        [self = this->shared_from_this(), pending, node](pki::IdentityVerdict verdict) {
          asio::post(self->worker_.executor, [self, pending, node, verdict = std::move(verdict)] {
            self->on_identity_checked(std::move(*pending), node, verdict);
          });
        });
  }

  void on_identity_checked(http::request<http::string_body> request, const std::string& node,
                           const pki::IdentityVerdict& verdict) {
    if (done_) return;
    if (timed_out_) {
      return fail(Rejection::handshake_timeout, "identity check of node " + node + " too slow");
    }
    if (verdict) {
      const auto why = verdict->label == "revoked"         ? Rejection::revoked
                       : verdict->label == "not_edge_node" ? Rejection::not_edge_node
                                                           : Rejection::unverifiable;
      return refuse(static_cast<http::status>(verdict->status), why, node,
                    "edgehub: " + verdict->reason);
    }
    open_session(std::move(request), node);
  }

  void open_session(http::request<http::string_body> request, const std::string& node) {
    timer_.cancel();
    listener_->handshake_done(worker_);
    done_ = true;
    const auto id = listener_->next_id.fetch_add(1);
    auto session = std::make_shared<WebSocketSession<Stream>>(
        std::move(stream_), node, peer_, id, listener_->options.session, *listener_);
    session->accept(std::move(request));
  }

  void refuse(http::status status, Rejection why, const std::string& node,
              const std::string& reason) {
    listener_->reject(why, peer_, node, reason);
    auto response = std::make_shared<http::response<http::string_body>>(status, 11);
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->body() = reason + "\n";
    response->keep_alive(false);
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response](error_code, std::size_t) {
                        self->close();
                      });
  }

  void fail(Rejection why, const std::string& reason) {
    listener_->reject(why, peer_, "", reason);
    close();
  }

  void close() {
    timer_.cancel();
    error_code ignored;
    raw_socket(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    raw_socket(stream_).close(ignored);
    if (!done_) {
      done_ = true;
      listener_->handshake_done(worker_);
      listener_->connections.fetch_sub(1);
    }
  }

  std::shared_ptr<Listener::Impl> listener_;
  Listener::Impl::Worker& worker_;
  Stream stream_;
  asio::steady_timer timer_;
  std::string peer_;
  asio::ip::address peer_address_;
  bool over_capacity_;
  Listener::Impl::PendingSlot slot_;  // given back when this is destroyed
  std::chrono::steady_clock::time_point deadline_;
  bool timed_out_ = false;
  bool done_ = false;
  std::string identity_;  // the client certificate's CN, read right after the handshake
  std::string serial_;    // and its serial (revocation)
  beast::flat_buffer buffer_;
  http::request_parser<http::string_body> parser_;
};

}  // namespace

void Listener::Impl::accept(Worker& w) {
  w.acceptor->async_accept([self = shared_from_this(), &w](error_code ec, Socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE and friends: back off a little instead of spinning.
      if (self->log_limiter.allow()) spdlog::warn("edge listener: accept failed: {}", ec.message());
      auto timer = std::make_shared<asio::steady_timer>(w.executor, std::chrono::milliseconds(50));
      timer->async_wait([self, &w, timer](error_code) {
        if (!self->stopped) self->accept(w);
      });
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    self->admit(w, std::move(socket));
    self->accept(w);
  });
}

bool Listener::Impl::acquire_pending(const asio::ip::address& address, Rejection& why) {
  std::lock_guard lock(pending_mutex);
  if (pending >= options.max_pending) {
    why = Rejection::pending_limit;
    return false;
  }
  if (options.max_edge_descriptors != 0 &&
      pending + connections.load() >= options.max_edge_descriptors) {
    why = Rejection::descriptors;
    return false;
  }
  auto& count = pending_by_address[address];
  if (count >= options.max_pending_per_address) {
    if (count == 0) pending_by_address.erase(address);
    why = Rejection::address_limit;
    return false;
  }
  ++count;
  ++pending;
  return true;
}

void Listener::Impl::release_pending(const asio::ip::address& address) {
  std::lock_guard lock(pending_mutex);
  --pending;
  if (auto it = pending_by_address.find(address); it != pending_by_address.end() && --it->second == 0) {
    pending_by_address.erase(it);
  }
}

// Over a cap the connection is closed at once: answering would cost what the cap saves.
void Listener::Impl::admit(Worker& w, Socket socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  std::string peer =
      ec ? "unknown" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  const auto address = ec ? asio::ip::address() : endpoint.address();
  Rejection why{};
  if (!acquire_pending(address, why)) {
    socket.close(ec);
    return reject(why, peer, "",
                  why == Rejection::pending_limit
                      ? "too many connections not yet sessions (hub.maxPendingConnections)"
                  : why == Rejection::descriptors
                      ? "edge connections hold every file descriptor the process may spare "
                        "(its open-files limit less hub.maxUpstreamInProgress + 256 kept for "
                        "the API client and admin port): raise the limit (ulimit -n, the "
                        "container runtime's nofile) or add replicas"
                      : "too many connections not yet sessions from this address "
                        "(hub.maxPendingPerAddress)");
  }
  await_first_byte(w, std::move(socket), PendingSlot(shared_from_this(), address),
                   std::move(peer), address);
}

// Until the peer sends something the socket holds no handshake slot and no TLS state, only
// a timer: connections that never send a ClientHello cost a file descriptor for
// hello_timeout and keep nobody else out.
void Listener::Impl::await_first_byte(Worker& w, Socket socket, PendingSlot slot, std::string peer,
                                      asio::ip::address address) {
  struct Arrival {
    Arrival(Executor ex, Socket s, PendingSlot p, std::string name, asio::ip::address a)
        : socket(std::move(s)), timer(ex), slot(std::move(p)), peer(std::move(name)),
          address(a) {}
    Socket socket;
    asio::steady_timer timer;
    PendingSlot slot;
    std::string peer;
    asio::ip::address address;
    bool timed_out = false;
  };
  auto arrival = std::make_shared<Arrival>(w.executor, std::move(socket), std::move(slot),
                                           std::move(peer), address);
  arrival->timer.expires_after(options.hello_timeout);
  arrival->timer.async_wait([arrival](error_code ec) {
    if (ec) return;
    arrival->timed_out = true;
    error_code ignored;
    arrival->socket.cancel(ignored);
  });
  arrival->socket.async_wait(
      tcp::socket::wait_read, [self = shared_from_this(), &w, arrival](error_code ec) {
        arrival->timer.cancel();
        if (ec || self->stopped) {
          error_code ignored;
          arrival->socket.close(ignored);
          if (arrival->timed_out) {
            self->reject(Rejection::idle_timeout, arrival->peer, "",
                         "nothing received within hub.helloTimeout");
          }
          return;
        }
        self->take_slot(w, Waiting{std::move(arrival->socket), std::move(arrival->slot),
                                   std::move(arrival->peer), arrival->address,
                                   std::chrono::steady_clock::now() + self->options.handshake_timeout});
      });
}

void Listener::Impl::take_slot(Worker& w, Waiting entry) {
  if (w.handshaking >= per_worker_handshakes) {
    w.waiting.push_back(std::move(entry));
    return;
  }
  start_upgrade(w, std::move(entry));
}

void Listener::Impl::start_upgrade(Worker& w, Waiting entry) {
  ++w.handshaking;
  handshakes.fetch_add(1);
  const bool over = connections.fetch_add(1) >= options.max_connections;
  if (options.tls) {
    std::make_shared<Upgrade<net::TlsStream>>(
        shared_from_this(), w, net::TlsStream(std::move(entry.socket), *options.tls),
        std::move(entry.peer), entry.address, over, std::move(entry.slot), entry.deadline)
        ->start();
  } else {
    std::make_shared<Upgrade<beast::tcp_stream>>(
        shared_from_this(), w, beast::tcp_stream(std::move(entry.socket)), std::move(entry.peer),
        entry.address, over, std::move(entry.slot), entry.deadline)
        ->start();
  }
}

void Listener::Impl::handshake_done(Worker& w) {
  --w.handshaking;
  handshakes.fetch_sub(1);
  while (!w.waiting.empty()) {
    auto next = std::move(w.waiting.front());
    w.waiting.pop_front();
    if (next.deadline > std::chrono::steady_clock::now()) return start_upgrade(w, std::move(next));
    error_code ignored;
    next.socket.close(ignored);
    reject(Rejection::handshake_timeout, next.peer, "",
           "no handshake slot within hub.handshakeTimeout");
  }
}

Listener::Listener(std::vector<asio::any_io_executor> executors, ListenerOptions options,
                   SessionHost& host, OnReject on_reject)
    : impl_(std::make_shared<Impl>(std::move(executors), std::move(options), host,
                                   std::move(on_reject))) {}

// Runs after the I/O threads have stopped (see the header): the acceptors and queued sockets
// are released here, so handlers that still hold the Impl own no I/O object of another
// thread's io_context.
Listener::~Listener() {
  impl_->stopped = true;
  for (auto& w : impl_->workers) {
    error_code ignored;
    if (w.acceptor) w.acceptor->close(ignored);
    w.acceptor.reset();
    w.waiting.clear();
  }
}

void Listener::start() {
  const auto& o = impl_->options;
  // Each connection keeps its TLS 1.3 traffic secrets for release_handshake_state().
  if (o.tls && o.compact_tls_sessions) net::capture_traffic_secrets(o.tls->native_handle());
  const std::string where = o.host + ":" + std::to_string(o.port);
  error_code ec;
  const auto address = asio::ip::make_address(o.host.empty() ? "0.0.0.0" : o.host, ec);
  if (ec) throw std::runtime_error("edge listener: cannot listen on " + where + ": not an IP address");
  std::uint16_t port = o.port;
  for (auto& w : impl_->workers) {
    w.acceptor = std::make_unique<Impl::Acceptor>(w.executor);
    const tcp::endpoint endpoint(address, port);
    w.acceptor->open(endpoint.protocol(), ec);
    if (!ec) w.acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) {
      const int one = 1;
      if (::setsockopt(w.acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        ec = error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) w.acceptor->bind(endpoint, ec);
    if (!ec) w.acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("edge listener: cannot listen on " + where + ": " + ec.message());
    port = w.acceptor->local_endpoint().port();  // port 0: the others share the chosen one
  }
  for (auto& w : impl_->workers) {
    asio::post(w.executor, [impl = impl_, &w] { impl->accept(w); });
  }
}

void Listener::stop_accepting() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  for (auto& w : impl_->workers) {
    if (!w.acceptor) continue;
    asio::post(w.executor, [impl = impl_, &w] {
      error_code ignored;
      w.acceptor->close(ignored);
      for (auto& entry : w.waiting) entry.socket.close(ignored);
      w.waiting.clear();
    });
  }
}

std::uint16_t Listener::port() const {
  if (impl_->workers.empty() || !impl_->workers.front().acceptor) return 0;
  error_code ec;
  const auto endpoint = impl_->workers.front().acceptor->local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

std::size_t Listener::connections() const { return impl_->connections.load(); }
std::size_t Listener::handshakes_in_progress() const { return impl_->handshakes.load(); }
std::size_t Listener::pending() const {
  std::lock_guard lock(impl_->pending_mutex);
  return impl_->pending;
}

websocket::close_code close_code_for(CloseReason reason) {
  switch (reason) {
    case CloseReason::shed:
    case CloseReason::claimed:
    case CloseReason::claim_failed:
    case CloseReason::stalled:
    case CloseReason::shutdown: return websocket::close_code::service_restart;  // 1012
    case CloseReason::bad_message: return websocket::close_code::protocol_error;
    case CloseReason::revoked: return websocket::close_code::policy_error;
    case CloseReason::slow_reader: return websocket::close_code::policy_error;
    case CloseReason::replaced:
    case CloseReason::node_deleted:
    case CloseReason::keepalive_timeout: return websocket::close_code::normal;
    default: return websocket::close_code::going_away;
  }
}

std::string_view to_string(CloseReason reason) {
  switch (reason) {
    case CloseReason::peer_closed: return "peer_closed";
    case CloseReason::keepalive_timeout: return "keepalive_timeout";
    case CloseReason::slow_reader: return "slow_reader";
    case CloseReason::bad_message: return "bad_message";
    case CloseReason::replaced: return "replaced";
    case CloseReason::shutdown: return "shutdown";
    case CloseReason::claimed: return "claimed";
    case CloseReason::claim_failed: return "claim_failed";
    case CloseReason::stalled: return "stalled";
    case CloseReason::node_deleted: return "node_deleted";
    case CloseReason::shed: return "shed";
    case CloseReason::write_failed: return "write_failed";
    case CloseReason::revoked: return "revoked";
  }
  return "unknown";
}

}  // namespace edgehub::hub

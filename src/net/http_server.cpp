#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/version.hpp>
#include <boost/algorithm/string/predicate.hpp>
#include <edgehub/net/http_server.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <set>

namespace edgehub::net {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpRequest::header(std::string_view name) const {
  const auto it = message.find(beast::string_view(name.data(), name.size()));
  return it == message.end() ? std::string() : std::string(it->value());
}

HttpResponse HttpResponse::text(unsigned status, std::string body) {
  return HttpResponse{status, std::move(body), "text/plain; charset=utf-8", {}};
}

HttpResponse HttpResponse::json(unsigned status, std::string body) {
  return HttpResponse{status, std::move(body), "application/json", {}};
}

namespace {
struct Closable {
  virtual ~Closable() = default;
  virtual void close() = 0;
};
}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, HttpServerOptions o)
      : executor(std::move(ex)), options(std::move(o)), acceptor(executor) {}

  void accept();
  void admit(tcp::socket socket);
  const HttpHandler* find(const std::string& path) const;
  void refused(std::string_view reason) const {
    if (options.on_refuse) options.on_refuse(reason);
  }
  void release(const asio::ip::address& address) {
    if (auto it = per_address.find(address); it != per_address.end() && --it->second == 0) {
      per_address.erase(it);
    }
  }

  asio::any_io_executor executor;
  HttpServerOptions options;
  tcp::acceptor acceptor;
  std::map<std::string, HttpHandler> routes;
  std::set<std::shared_ptr<Closable>> connections;  // kept to close them on stop
  std::map<asio::ip::address, std::size_t> per_address;  // open connections by peer address
  bool stopped = false;
  std::atomic<std::uint64_t> handler_exceptions{0};
};

namespace {

tcp::socket& socket_of(beast::tcp_stream& s) { return s.socket(); }
TlsStream::socket_type& socket_of(TlsStream& s) { return s.socket(); }

template <class Stream>
class Connection final : public Closable,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(std::shared_ptr<HttpServer::Impl> server, Stream stream, std::string peer,
             asio::ip::address address, bool reserved)
      : server_(std::move(server)), stream_(std::move(stream)), timer_(stream_.get_executor()),
        peer_(std::move(peer)), address_(address), reserved_(reserved) {}

  void start() {
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      arm_timer(server_->options.handshake_timeout);
      stream_.async_handshake(HandshakeRole::server,
                              [self = this->shared_from_this()](error_code ec, std::size_t) {
                                if (ec) {
                                  spdlog::debug("{}: TLS handshake with {} failed: {}",
                                                self->server_->options.name, self->peer_,
                                                ec.message());
                                  self->server_->refused(self->timed_out_ ? "timeout"
                                                                          : "tls_handshake");
                                  return self->close();
                                }
                                self->read();
                              });
    } else {
      read();
    }
  }

  // Idempotent: the timer and failed operations may all end the connection.
  void close() override {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    error_code ignored;
    socket_of(stream_).shutdown(tcp::socket::shutdown_both, ignored);
    socket_of(stream_).close(ignored);
    server_->release(address_);
    server_->connections.erase(this->shared_from_this());
  }

 private:
  void arm_timer(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    timer_.async_wait([weak = this->weak_from_this()](error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->timed_out_ = true;
        self->close();
      }
    });
  }

  void read() {
    arm_timer(server_->options.request_timeout);
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(16 * 1024);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(error_code ec) {
    if (closed_) {
      if (timed_out_) server_->refused("timeout");
      return;
    }
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    arm_timer(server_->options.timeout);
    if (ec == http::error::body_limit) {
      server_->refused("body_too_large");
      return reply(HttpResponse::text(413, "request body larger than " +
                                               std::to_string(server_->options.max_body_bytes) +
                                               " bytes\n"),
                   false);
    }
    if (ec) {
      spdlog::debug("{}: bad request from {}: {}", server_->options.name, peer_, ec.message());
      server_->refused("bad_request");
      return reply(HttpResponse::text(400, "bad request: " + ec.message() + "\n"), false);
    }
    HttpRequest request;
    request.message = parser_->release();
    const auto target = std::string(request.message.target());
    const auto q = target.find('?');
    request.path = target.substr(0, q);
    request.query = q == std::string::npos ? std::string() : target.substr(q + 1);
    request.peer = peer_;
    request.peer_address = address_;
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      request.peer_common_name = stream_.peer_common_name();
      SSL* ssl = stream_.native_handle();
      X509* cert = SSL_get0_peer_certificate(ssl);
      request.peer_verified = cert != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
      request.peer_serial = serial_hex(cert);
    }
    const bool keep_alive = request.message.keep_alive() && !reserved_;
    if (reserved_ && std::find(server_->options.reserved_paths.begin(),
                               server_->options.reserved_paths.end(),
                               request.path) == server_->options.reserved_paths.end()) {
      server_->refused("reserved_only");
      return reply(HttpResponse::text(503, "connection limit reached; retry later\n"), false);
    }
    const HttpHandler* handler = server_->find(request.path);
    if (handler == nullptr) {
      return reply(HttpResponse::text(404, "no such path: " + request.path + "\n"), keep_alive);
    }
    auto weak = this->weak_from_this();
    auto executor = stream_.get_executor();
    auto answered = std::make_shared<std::atomic<bool>>(false);
    try {
      (*handler)(request, [weak, executor, keep_alive, answered](HttpResponse response) {
        if (answered->exchange(true)) return;
        asio::dispatch(executor, [weak, keep_alive, response = std::move(response)]() mutable {
          if (auto self = weak.lock()) self->reply(std::move(response), keep_alive);
        });
      });
    } catch (const std::exception& e) {
      handler_failed(request.path, e.what(), *answered);
    } catch (...) {
      handler_failed(request.path, "unknown exception", *answered);
    }
  }

  // A handler that throws is a bug; it must never end the process (the API thread runs the
  // certificate service): the request is answered 500 unless it was answered already.
  void handler_failed(const std::string& path, const char* what, std::atomic<bool>& answered) {
    server_->handler_exceptions.fetch_add(1);
    spdlog::error("{}: handler for {} from {} threw: {}", server_->options.name,
                  path.substr(0, 128), peer_, what);
    if (answered.exchange(true)) return;
    reply(HttpResponse::text(500, "internal error\n"), false);
  }

  void reply(HttpResponse r, bool keep_alive) {
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), 11);
    message->set(http::field::server, "edgehub");
    message->set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) message->set(name, value);
    message->body() = std::move(r.body);
    message->keep_alive(keep_alive);
    message->prepare_payload();
    http::async_write(stream_, *message,
                      [self = this->shared_from_this(), message](error_code ec, std::size_t) {
                        if (ec || !message->keep_alive()) return self->close();
                        self->read();
                      });
  }

  std::shared_ptr<HttpServer::Impl> server_;
  Stream stream_;
  asio::steady_timer timer_;
  std::string peer_;
  asio::ip::address address_;
  bool reserved_;  // beyond max_connections: reserved_paths only
  bool closed_ = false;
  bool timed_out_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

const HttpHandler* HttpServer::Impl::find(const std::string& path) const {
  if (auto it = routes.find(path); it != routes.end()) return &it->second;
  const HttpHandler* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [prefix, handler] : routes) {
    if (!prefix.empty() && prefix.back() == '/' && path.starts_with(prefix) &&
        prefix.size() > best_len) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  return best;
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([self = shared_from_this()](error_code ec, tcp::socket socket) {
    if (self->stopped || ec == asio::error::operation_aborted) return;
    if (!ec) {
      self->admit(std::move(socket));
      return self->accept();
    }
    // EMFILE and friends: back off a little instead of spinning.
    spdlog::warn("{}: accept failed: {}", self->options.name, ec.message());
    auto timer = std::make_shared<asio::steady_timer>(self->executor, std::chrono::milliseconds(50));
    timer->async_wait([self, timer](error_code) {
      if (!self->stopped) self->accept();
    });
  });
}

// Over a limit the connection is closed without an answer: answering costs what the limit
// saves.
void HttpServer::Impl::admit(tcp::socket socket) {
  error_code peer_ec;
  const auto endpoint = socket.remote_endpoint(peer_ec);
  const auto address = peer_ec ? asio::ip::address() : endpoint.address();
  std::string peer = peer_ec ? std::string("unknown")
                             : address.to_string() + ":" + std::to_string(endpoint.port());
  const bool reserved = connections.size() >= options.max_connections;
  std::string_view refusal;
  if (connections.size() >= options.max_connections + options.reserved_connections) {
    refusal = "connection_limit";
  } else if (per_address[address] >= options.max_connections_per_address) {
    refusal = "address_limit";
  }
  if (!refusal.empty()) {
    if (per_address[address] == 0) per_address.erase(address);
    spdlog::debug("{}: refusing {}: {} ({} connections open)", options.name, peer, refusal,
                  connections.size());
    refused(refusal);
    socket.close(peer_ec);
    return;
  }
  ++per_address[address];
  std::shared_ptr<Closable> c;
  if (options.tls) {
    auto tls = std::make_shared<Connection<TlsStream>>(
        shared_from_this(), TlsStream(std::move(socket), *options.tls), std::move(peer), address,
        reserved);
    c = tls;
    connections.insert(c);
    tls->start();
  } else {
    auto plain = std::make_shared<Connection<beast::tcp_stream>>(
        shared_from_this(), beast::tcp_stream(std::move(socket)), std::move(peer), address,
        reserved);
    c = plain;
    connections.insert(c);
    plain->start();
  }
}

HttpServer::HttpServer(asio::any_io_executor executor, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

// Runs after the server's io_context has stopped (see the header). Connections and the
// server refer to each other; dropping them here breaks that cycle even when the close that
// stop() posted never ran.
HttpServer::~HttpServer() {
  stop();
  impl_->connections.clear();
  error_code ignored;
  impl_->acceptor.close(ignored);
}

void HttpServer::handle(std::string path, HttpHandler handler) {
  impl_->routes[std::move(path)] = std::move(handler);
}

void HttpServer::handle(std::string path, std::function<HttpResponse(const HttpRequest&)> handler) {
  handle(std::move(path), [handler = std::move(handler)](const HttpRequest& r, Respond respond) {
    respond(handler(r));
  });
}

void HttpServer::start() {
  const auto& o = impl_->options;
  const std::string where = o.host + ":" + std::to_string(o.port);
  error_code ec;
  const auto address = asio::ip::make_address(o.host.empty() ? "0.0.0.0" : o.host, ec);
  if (ec) throw std::runtime_error(o.name + ": cannot listen on " + where + ": not an IP address");
  const tcp::endpoint endpoint(address, o.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(o.name + ": cannot listen on " + where + ": " + ec.message());
  impl_->accept();
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  asio::dispatch(impl_->executor, [impl = impl_] {
    error_code ignored;
    impl->acceptor.close(ignored);
    auto open = impl->connections;
    for (const auto& c : open) c->close();
  });
}

std::uint64_t HttpServer::handler_exceptions() const { return impl_->handler_exceptions.load(); }

std::uint16_t HttpServer::port() const {
  error_code ec;
  const auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace edgehub::net

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/net/run_guarded.hpp>
#include <fstream>
#include <future>
#include <thread>
#include <unordered_map>

#include <edgehub/devapi/api_error.hpp>

#include "api.hpp"
#include "watch_sink.hpp"

namespace edgehub::devapi {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace detail {

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void shutdown() = 0;
};

// Everything the connections share. Member order matters for destruction: the io_context
// (and with it every connection) goes before the store and the session table.
struct ServerCore {
  explicit ServerCore(ServerOptions opts)
      : options(std::move(opts)), store(options.watch_history), api(store, options) {}

  ServerOptions options;
  Store store;
  Api api;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // I/O thread only
  std::optional<asio::ssl::context> ssl;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::string address;  // host:port, for discovery
};

namespace {

void append_chunk_size(std::string& out, std::size_t size) {
  char text[24];
  const int n = std::snprintf(text, sizeof text, "%zx\r\n", size);
  out.append(text, static_cast<std::size_t>(n));
}

void append_chunk(std::string& out, std::string_view data) {
  append_chunk_size(out, data.size());
  out.append(data);
  out += "\r\n";
}

constexpr std::string_view kWatchHeader =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Cache-Control: no-cache, private\r\n"
    "Transfer-Encoding: chunked\r\n"
    "Connection: close\r\n\r\n";

template <class Stream>
void close_stream(Stream& stream) {
  error_code ec;
  auto& socket = beast::get_lowest_layer(stream).socket();
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

// One HTTP/1.1 connection (plain or TLS): keep-alive request/response, or one watch stream.
template <class Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream stream, ServerCore& core)
      : stream_(std::move(stream)),
        core_(core),
        timeout_timer_(core.ioc),
        bookmark_timer_(core.ioc) {}

  ~Session() override {
    core_.sessions.erase(this);
    if (watch_id_ != 0) core_.store.unwatch(watch_id_);
  }

  void run() {
    core_.sessions[this] = this->weak_from_this();
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = this->shared_from_this()](error_code ec) {
                                if (ec) return self->shutdown();
                                self->do_read();
                              });
    } else {
      do_read();
    }
  }

  void shutdown() override {
    if (closed_) return;
    closed_ = true;
    if (watch_id_ != 0) {
      core_.store.unwatch(watch_id_);
      watch_id_ = 0;
    }
    timeout_timer_.cancel();
    bookmark_timer_.cancel();
    close_stream(stream_);
  }

 private:
  void do_read() {
    beast::get_lowest_layer(stream_).expires_never();
    parser_.emplace();
    parser_->body_limit(64 * 1024 * 1024);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) return shutdown();  // end_of_stream, reset, or shutdown(): all end the session
    const auto request = parser_->release();
    if (injected_conflict(request)) {
      // As kube-apiserver answers a write that lost a race with another writer: nothing
      // is applied.
      const ApiError conflict(409, "Conflict",
                              "Operation cannot be fulfilled: the object has been modified; "
                              "please apply your changes to the latest version and try again",
                              nlohmann::json::object());
      return send(Api::error_reply(conflict), request.version(), request.keep_alive());
    }
    auto routed = core_.api.handle(request, core_.address);
    spdlog::debug("devapi: {} {} -> {}", std::string(request.method_string()),
                  std::string(request.target()), routed.watch ? 200 : routed.reply.status);
    if (routed.watch) return start_watch(std::move(*routed.watch));
    if (core_.options.response_delay) {
      const auto delay = core_.options.response_delay(std::string(request.method_string()),
                                                      std::string(request.target()));
      if (delay.count() > 0) {
        auto timer = std::make_shared<asio::steady_timer>(stream_.get_executor(), delay);
        timer->async_wait([self = this->shared_from_this(), timer,
                           reply = std::move(routed.reply), version = request.version(),
                           keep_alive = request.keep_alive()](error_code) mutable {
          if (!self->closed_) self->send(std::move(reply), version, keep_alive);
        });
        return;
      }
    }
    send(std::move(routed.reply), request.version(), request.keep_alive());
  }

  template <class Request>
  bool injected_conflict(const Request& request) const {
    const auto method = request.method();
    const bool write = method == http::verb::put || method == http::verb::patch ||
                       method == http::verb::post || method == http::verb::delete_;
    return write && core_.options.inject_conflict &&
           core_.options.inject_conflict(std::string(request.method_string()),
                                         std::string(request.target()));
  }

  void send(detail::Reply reply, unsigned version, bool keep_alive) {
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), version);
    response->set(http::field::content_type, reply.content_type);
    response->set(http::field::cache_control, "no-cache, private");
    response->keep_alive(keep_alive);
    response->body() = std::move(reply.body);
    response->prepare_payload();
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response](error_code ec, std::size_t) {
                        if (ec || !response->keep_alive()) return self->shutdown();
                        self->do_read();
                      });
  }

  void start_watch(detail::WatchPlan plan) {
    std::weak_ptr<Session> weak = this->shared_from_this();
    auto& ioc = core_.ioc;
    sink_ =
        std::make_shared<WatchSink>(*plan.resource, core_.options.watch_queue_limit, [weak, &ioc] {
          asio::post(ioc, [weak] {
            if (auto self = weak.lock()) self->drain();
          });
        });
    if (!plan.table_version.empty()) sink_->send_tables(plan.table_version, plan.table_include);
    std::string head(kWatchHeader);
    try {
      watch_id_ = core_.store.watch(*plan.resource, plan.options, sink_);
    } catch (const ApiError& error) {
      if (error.code() != 410) {
        sink_.reset();
        return send(detail::Api::error_reply(error), 11, true);
      }
      // An expired resourceVersion is not an HTTP error on a watch: one ERROR event, then end.
      append_chunk(head, error_event_line(error));
      head += "0\r\n\r\n";
      ending_ = true;
    }
    watching_ = true;
    head_ = std::move(head);
    write_out();
    if (ending_) return;
    allow_bookmarks_ = plan.options.allow_bookmarks;
    resource_name_ = plan.resource->qualified_name();
    timeout_timer_.expires_after(plan.timeout);
    timeout_timer_.async_wait([self = this->shared_from_this()](error_code ec) {
      if (!ec) self->on_timeout();
    });
    if (allow_bookmarks_) arm_bookmark();
    // The client sends nothing more on a watch connection: a completed read means it left.
    stream_.async_read_some(
        asio::buffer(probe_),
        [self = this->shared_from_this()](error_code, std::size_t) { self->shutdown(); });
  }

  void arm_bookmark() {
    bookmark_timer_.expires_after(core_.options.bookmark_interval);
    bookmark_timer_.async_wait([self = this->shared_from_this()](error_code ec) {
      if (ec || self->closed_ || self->watch_id_ == 0) return;
      self->core_.store.request_bookmark(self->watch_id_);
      self->arm_bookmark();
    });
  }

  void on_timeout() {
    if (closed_) return;
    // Like kube-apiserver, tell the client how far it got just before the watch ends.
    if (allow_bookmarks_ && watch_id_ != 0) core_.store.request_bookmark(watch_id_);
    end_requested_ = true;
    drain();
  }

  void drain() {
    if (!watching_ || writing_ || closed_ || ending_) return;
    // The queued lines are written as one chunk straight from the buffer the sink filled;
    // the sink gets this connection's previous buffer back, so neither side reallocates.
    const auto batch = sink_->take_into(body_);
    head_.clear();
    tail_.clear();
    if (!body_.empty()) {
      append_chunk_size(head_, body_.size());
      tail_ = "\r\n";
    }
    if (batch.overflowed) {
      spdlog::warn("devapi: closing a watch of {} that fell more than {} events behind",
                   resource_name_, core_.options.watch_queue_limit);
      append_chunk(tail_, sink_->overflow_line());
    }
    if (batch.overflowed || batch.closed || end_requested_) {
      ending_ = true;
      tail_ += "0\r\n\r\n";
    }
    if (head_.empty() && tail_.empty()) return;
    write_out();
  }

  void write_out() {
    writing_ = true;
    const std::array<asio::const_buffer, 3> buffers = {asio::buffer(head_), asio::buffer(body_),
                                                       asio::buffer(tail_)};
    asio::async_write(stream_, buffers,
                      [self = this->shared_from_this()](error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (ec || self->ending_) return self->shutdown();
                        self->drain();
                      });
  }

  Stream stream_;
  ServerCore& core_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // Watch state.
  std::shared_ptr<WatchSink> sink_;
  std::uint64_t watch_id_ = 0;
  bool watching_ = false;
  bool writing_ = false;
  bool ending_ = false;
  bool end_requested_ = false;
  bool allow_bookmarks_ = false;
  bool closed_ = false;
  std::string resource_name_;
  std::string head_;  // chunk header (and, first, the HTTP response header)
  std::string body_;  // the event lines of one chunk
  std::string tail_;  // chunk end, an ERROR event, the last chunk
  std::array<char, 64> probe_{};
  asio::steady_timer timeout_timer_;
  asio::steady_timer bookmark_timer_;
};

void do_accept(ServerCore& core) {
  core.acceptor.async_accept([&core](error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec != asio::error::operation_aborted) {
        spdlog::warn("devapi: accept failed: {}", ec.message());
        do_accept(core);
      }
      return;
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (core.ssl) {
      std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(beast::tcp_stream(std::move(socket)), *core.ssl),
          core)
          ->run();
    } else {
      std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), core)
          ->run();
    }
    do_accept(core);
  });
}

const char* kSeedNamespaces[] = {"default", "kube-system", "kube-public", "kube-node-lease"};

}  // namespace
}  // namespace detail

class Server::Impl : public detail::ServerCore {
 public:
  using ServerCore::ServerCore;
  std::thread thread;
  std::uint16_t port = 0;
  bool running = false;
  bool stopped = false;
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  const auto& namespaces = resource_by_name("namespaces");
  for (const char* name : detail::kSeedNamespaces) {
    impl_->store.create(namespaces, "", {{"metadata", {{"name", name}}}});
  }
}

Server::~Server() {
  stop();
}

void Server::start() {
  Impl& core = *impl_;
  if (core.running || core.stopped) throw std::logic_error("devapi: Server::start called twice");
  const bool tls = !core.options.tls_cert_file.empty() && !core.options.tls_key_file.empty();
  if (tls) {
    core.ssl.emplace(asio::ssl::context::tls_server);
    core.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1);
    core.ssl->use_certificate_chain_file(core.options.tls_cert_file);
    core.ssl->use_private_key_file(core.options.tls_key_file, asio::ssl::context::pem);
  }
  const tcp::endpoint endpoint(asio::ip::make_address(core.options.host), core.options.port);
  core.acceptor.open(endpoint.protocol());
  core.acceptor.set_option(asio::socket_base::reuse_address(true));
  core.acceptor.bind(endpoint);
  core.acceptor.listen(asio::socket_base::max_listen_connections);
  core.port = core.acceptor.local_endpoint().port();
  core.address = core.options.host + ":" + std::to_string(core.port);
  detail::do_accept(core);
  core.running = true;
  core.thread = std::thread([&core] { net::run_guarded(core.ioc, "devapi"); });
  spdlog::info("devapi: serving the Kubernetes API on {}", url());
}

void Server::stop() {
  Impl& core = *impl_;
  if (!core.running) return;
  core.running = false;
  core.stopped = true;
  std::promise<void> done;
  asio::post(core.ioc, [&core, &done] {
    error_code ec;
    core.acceptor.close(ec);
    core.store.close_watchers();
    std::vector<std::shared_ptr<detail::SessionBase>> sessions;
    for (auto& [ptr, weak] : core.sessions) {
      if (auto session = weak.lock()) sessions.push_back(std::move(session));
    }
    for (auto& session : sessions) session->shutdown();
    done.set_value();
  });
  done.get_future().wait();
  core.ioc.stop();
  core.thread.join();
}

std::uint16_t Server::port() const {
  return impl_->port;
}

std::string Server::url() const {
  const std::string scheme = impl_->ssl ? "https" : "http";
  return scheme + "://" + impl_->options.host + ":" + std::to_string(impl_->port);
}

void Server::write_kubeconfig(const std::string& path) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw std::runtime_error("devapi: cannot write kubeconfig " + path);
  out << "apiVersion: v1\nkind: Config\nclusters:\n- name: edgehub-dev\n  cluster:\n"
      << "    server: " << url() << "\n";
  if (impl_->ssl) {
    if (!impl_->options.tls_ca_file.empty()) {
      out << "    certificate-authority: " << impl_->options.tls_ca_file << "\n";
    } else {
      out << "    insecure-skip-tls-verify: true\n";
    }
  }
  out << "users:\n- name: edgehub-dev\n  user:";
  if (!impl_->options.bearer_token.empty()) {
    out << "\n    token: " << impl_->options.bearer_token << "\n";
  } else {
    out << " {}\n";
  }
  out << "contexts:\n- name: edgehub-dev\n  context:\n    cluster: edgehub-dev\n"
      << "    user: edgehub-dev\n    namespace: default\ncurrent-context: edgehub-dev\n";
  if (!out) throw std::runtime_error("devapi: cannot write kubeconfig " + path);
}

void Server::expire_history() {
  impl_->store.expire_history();
}

void Server::drop_watchers() {
  impl_->store.close_watchers();
}

Store& Server::store() {
  return impl_->store;
}
const Store& Server::store() const {
  return impl_->store;
}

}  // namespace edgehub::devapi

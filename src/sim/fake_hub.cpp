#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/websocket.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/sim/fake_hub.hpp>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/resource.hpp>
#include <map>
#include <mutex>
#include <thread>

namespace edgehub::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void send(std::string payload) = 0;  // any thread
  virtual void drop() = 0;                     // any thread
};

struct FakeHub::Impl : std::enable_shared_from_this<FakeHub::Impl> {
  FakeHubOptions options;
  std::optional<net::TlsContext> tls;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::thread> threads;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::size_t next_context = 0;
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> ended{0};
  std::atomic<std::uint64_t> version{1000};

  mutable std::mutex mutex;  // guards everything below
  std::vector<ReceivedMessage> received;
  std::map<std::string, std::vector<std::vector<std::pair<std::string, std::string>>>> headers;
  std::vector<std::string> common_names;
  std::map<std::string, std::weak_ptr<SessionBase>> sessions;
  std::map<std::string, std::pair<std::string, std::string>> leases;  // node → uid, rv
  int conflicts_left = 0;
  std::map<std::string, std::string> nodes;                           // node → uid
  std::map<std::string, std::pair<std::string, std::string>> objects;  // resource → json, rv

  std::string next_version() { return std::to_string(version.fetch_add(1) + 1); }

  void do_accept();
  // Replies for one message from `node`; appended to `out` as encoded frames.
  void handle(const std::string& node, const wire::Message& m, std::vector<std::string>& out);
};

namespace {

template <class Next>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Next>> {
 public:
  Session(std::shared_ptr<FakeHub::Impl> hub, Next next)
      : hub_(std::move(hub)), ws_(std::move(next)) {}

  void run() {
    if constexpr (std::is_same_v<Next, net::TlsStream>) {
      ws_.next_layer().async_handshake(
          net::HandshakeRole::server, [self = this->shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
              self->hub_->handshake_failures.fetch_add(1);
              spdlog::debug("fake hub: TLS handshake failed: {}", ec.message());
              return;
            }
            self->read_request();
          });
    } else {
      read_request();
    }
  }

  void send(std::string payload) override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this(), p = std::move(payload)]() mutable {
      self->queue(std::move(p));
    });
  }

  void drop() override {
    asio::post(ws_.get_executor(), [self = this->shared_from_this()] {
      error_code ignored;
      beast::get_lowest_layer(self->ws_).close(ignored);
    });
  }

 private:
  void read_request() {
    request_.emplace();
    http::async_read(ws_.next_layer(), buffer_, *request_,
                     [self = this->shared_from_this()](error_code ec, std::size_t) {
                       if (ec) return;
                       self->on_request();
                     });
  }

  void on_request() {
    node_ = std::string((*request_)["Node_id"]);
    if (hub_->options.record) {
      std::vector<std::pair<std::string, std::string>> fields;
      for (const auto& f : *request_) {
        fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
      }
      std::lock_guard lock(hub_->mutex);
      hub_->headers[node_].push_back(std::move(fields));
      if constexpr (std::is_same_v<Next, net::TlsStream>) {
        hub_->common_names.push_back(ws_.next_layer().peer_common_name());
      }
    }
    if (!hub_->options.replica_header.empty()) {
      ws_.set_option(websocket::stream_base::decorator(
          [id = hub_->options.replica_header](websocket::response_type& res) {
            res.set("X-Edgehub-Replica", id);
          }));
    }
    ws_.async_accept(*request_, [self = this->shared_from_this()](error_code ec) {
      if (ec) return;
      self->request_.reset();
      if (self->buffer_.size() == 0) self->buffer_.shrink_to_fit();
      self->hub_->accepted.fetch_add(1);
      {
        std::lock_guard lock(self->hub_->mutex);
        self->hub_->sessions[self->node_] = self->weak_from_this();
      }
      self->ws_.text(true);
      self->do_read();
    });
  }

  void do_read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->closed();
      self->on_message();
    });
  }

  void on_message() {
    const auto data = buffer_.cdata();
    auto decoded =
        wire::decode(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (decoded) {
      std::vector<std::string> replies;
      hub_->handle(node_, *decoded, replies);
      for (auto& r : replies) queue(std::move(r));
    }
    do_read();
  }

  void queue(std::string payload) {
    out_.push_back(std::move(payload));
    if (out_.size() == 1) do_write();
  }

  void do_write() {
    ws_.async_write(asio::buffer(out_.front()),
                    [self = this->shared_from_this()](error_code ec, std::size_t) {
                      if (ec) return;
                      self->out_.erase(self->out_.begin());
                      if (!self->out_.empty()) self->do_write();
                    });
  }

  void closed() {
    hub_->ended.fetch_add(1);
    std::lock_guard lock(hub_->mutex);
    auto it = hub_->sessions.find(node_);
    if (it != hub_->sessions.end() && it->second.lock().get() == this) hub_->sessions.erase(it);
  }

  std::shared_ptr<FakeHub::Impl> hub_;
  websocket::stream<Next> ws_;
  beast::flat_buffer buffer_;
  std::optional<http::request<http::empty_body>> request_;
  std::vector<std::string> out_;
  std::string node_;
};

}  // namespace

void FakeHub::Impl::do_accept() {
  auto& ctx = *contexts[next_context++ % contexts.size()];
  acceptor->async_accept(ctx, [self = shared_from_this()](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !self->acceptor->is_open()) return;
    if (!ec) {
      if (self->tls) {
        std::make_shared<Session<net::TlsStream>>(self, net::TlsStream(std::move(socket), *self->tls))
            ->run();
      } else {
        std::make_shared<Session<tcp::socket>>(self, std::move(socket))->run();
      }
    } else {
      spdlog::warn("fake hub: accept failed: {}", ec.message());
    }
    self->do_accept();
  });
}

void FakeHub::Impl::handle(const std::string& node, const wire::Message& m,
                           std::vector<std::string>& out) {
  if (options.record) {
    std::lock_guard lock(mutex);
    received.push_back(ReceivedMessage{node, m});
  }
  if (!options.answer_requests || m.route.source != "edged") return;
  auto resource = wire::parse_resource(m.route.resource);
  if (!resource) return;
  const auto& r = *resource;
  const auto& op = m.route.operation;
  auto reply = [&](std::string content, std::string rv = {}) {
    out.push_back(wire::encode(wire::make_response(m, std::move(content),
                                                   wire::source::kEdgeController,
                                                   wire::group::kResource, std::move(rv))));
  };
  auto not_found = [&](std::string group, std::string kind) {
    return wire::status_error({"NotFound", 404, kind + " \"" + r.name + "\" not found", r.name,
                               std::move(group), kind});
  };
  std::lock_guard lock(mutex);
  if (r.type == "lease") {
    auto& lease = leases[r.name];
    if (op == wire::operation::kQuery) {
      if (lease.first.empty()) {
        leases.erase(r.name);
        return reply(wire::object_resp("null", not_found("coordination.k8s.io", "lease")));
      }
    } else {
      if (op == wire::operation::kUpdate && conflicts_left > 0) {
        // As after a hand-off: the hub renewed the Lease, the edge's resourceVersion is old.
        --conflicts_left;
        lease.second = next_version();
        return reply(wire::object_resp(
            "null", wire::status_error({"Conflict", 409,
                                        "Operation cannot be fulfilled on leases.coordination.k8s.io \"" +
                                            r.name + "\": the object has been modified",
                                        r.name, "coordination.k8s.io", "leases"})));
      }
      if (lease.first.empty()) lease.first = wire::new_message_id();
      lease.second = next_version();
    }
    const nlohmann::json obj = {{"metadata",
                                 {{"name", r.name},
                                  {"namespace", r.ns},
                                  {"uid", lease.first},
                                  {"resourceVersion", lease.second}}},
                                {"spec", {{"holderIdentity", r.name}, {"leaseDurationSeconds", 40}}}};
    return reply(wire::object_resp(obj.dump()));
  }
  if (r.type == "node" && op == wire::operation::kInsert) {
    if (options.node_exists || nodes.count(r.name) != 0) {
      return reply(wire::object_resp(
          "null", wire::status_error({"AlreadyExists", 409,
                                      "nodes \"" + r.name + "\" already exists", r.name, "",
                                      "nodes"})));
    }
    const std::string uid = wire::new_message_id();
    nodes[r.name] = uid;
    const std::string rv = next_version();
    const nlohmann::json obj = {
        {"kind", "Node"},
        {"apiVersion", "v1"},
        {"metadata", {{"name", r.name}, {"uid", uid}, {"resourceVersion", rv}}}};
    reply(wire::object_resp(obj.dump()));
    // cloudcore pushes the node right after registering it (KUBEEDGE-WIRE §11.4).
    wire::Message push;
    push.header.msg_id = wire::new_message_id();
    push.header.timestamp = wire::now_millis();
    push.header.resource_version = rv;
    push.route = {std::string(wire::source::kEdgeController), "", std::string(wire::group::kResource),
                  std::string(wire::operation::kUpdate), m.route.resource};
    push.content = obj.dump();
    out.push_back(wire::encode(push));
    return;
  }
  if (r.type == "nodepatch" || r.type == "podpatch") {
    const std::string rv = next_version();
    const nlohmann::json obj = {
        {"metadata", {{"name", r.name}, {"namespace", r.ns}, {"resourceVersion", rv}}}};
    return reply(wire::object_resp(obj.dump()), rv);
  }
  if ((r.type == "configmap" || r.type == "secret") && op == wire::operation::kQuery) {
    const auto it = objects.find(m.route.resource);
    if (it == objects.end()) return reply(not_found("", r.type + "s"));
    return reply(it->second.first, it->second.second);
  }
}

FakeHub::FakeHub(FakeHubOptions options, std::optional<net::TlsContext> tls)
    : impl_(std::make_shared<Impl>()) {
  impl_->options = std::move(options);
  impl_->conflicts_left = impl_->options.conflicting_lease_updates;
  impl_->tls = std::move(tls);
}

FakeHub::~FakeHub() { stop(); }

void FakeHub::start(int threads) {
  threads = std::max(1, threads);
  for (int i = 0; i < threads; ++i) impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
  auto& first = *impl_->contexts.front();
  impl_->acceptor = std::make_unique<tcp::acceptor>(first);
  const tcp::endpoint ep(asio::ip::make_address(impl_->options.address), impl_->options.port);
  impl_->acceptor->open(ep.protocol());
  impl_->acceptor->set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor->bind(ep);
  impl_->acceptor->listen(impl_->options.backlog);
  impl_->do_accept();
  for (auto& ctx : impl_->contexts) {
    impl_->threads.emplace_back([c = ctx.get()] {
      auto guard = asio::make_work_guard(*c);
      c->run();
    });
  }
}

void FakeHub::stop() {
  if (impl_->threads.empty()) return;
  asio::post(*impl_->contexts.front(), [impl = impl_] {
    error_code ignored;
    impl->acceptor->close(ignored);
  });
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Sessions live in pending handlers; destroying the contexts frees them.
  impl_->acceptor.reset();
  impl_->contexts.clear();
}

std::uint16_t FakeHub::port() const { return impl_->acceptor->local_endpoint().port(); }

std::vector<ReceivedMessage> FakeHub::received() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

std::vector<wire::Message> FakeHub::received_from(const std::string& node) const {
  std::lock_guard lock(impl_->mutex);
  std::vector<wire::Message> out;
  for (const auto& r : impl_->received) {
    if (r.node == node) out.push_back(r.message);
  }
  return out;
}

std::vector<std::vector<std::pair<std::string, std::string>>> FakeHub::upgrade_headers(
    const std::string& node) const {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->headers.find(node);
  return it == impl_->headers.end() ? decltype(impl_->headers)::mapped_type{} : it->second;
}

std::vector<std::string> FakeHub::client_common_names() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->common_names;
}

std::size_t FakeHub::sessions() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->sessions.size();
}

std::uint64_t FakeHub::accepted() const { return impl_->accepted.load(); }
std::uint64_t FakeHub::handshake_failures() const { return impl_->handshake_failures.load(); }
std::uint64_t FakeHub::sessions_ended() const { return impl_->ended.load(); }

bool FakeHub::send(const std::string& node, const wire::Message& message) {
  std::shared_ptr<SessionBase> session;
  {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->sessions.find(node);
    if (it != impl_->sessions.end()) session = it->second.lock();
  }
  if (!session) return false;
  session->send(wire::encode(message));
  return true;
}

bool FakeHub::drop(const std::string& node) {
  std::shared_ptr<SessionBase> session;
  {
    std::lock_guard lock(impl_->mutex);
    const auto it = impl_->sessions.find(node);
    if (it != impl_->sessions.end()) session = it->second.lock();
  }
  if (!session) return false;
  session->drop();
  return true;
}

void FakeHub::put_object(const std::string& resource, std::string object_json,
                         std::string resource_version) {
  std::lock_guard lock(impl_->mutex);
  impl_->objects[resource] = {std::move(object_json), std::move(resource_version)};
}

}  // namespace edgehub::sim

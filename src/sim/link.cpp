// The transport of one connection attempt, over TLS (net::TlsStream) or plain TCP.
#include <netinet/in.h>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket.hpp>
#include <edgehub/net/tls_stream.hpp>

#include "link.hpp"
#include "node.hpp"
#include "worker.hpp"

namespace edgehub::sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// Edgecore's upgrade request, header for header and in its order (KUBEEDGE-WIRE §1.2):
// Beast builds its own, so the decorator rebuilds the field list, keeping Beast's key.
struct EdgecoreHeaders {
  const Node* node;
  const SimOptions* options;
  const std::string* host;
  void operator()(websocket::request_type& req) const {
    const std::string key(req[http::field::sec_websocket_key]);
    for (auto it = req.begin(); it != req.end();) it = req.erase(it);
    req.insert("Host", *host);
    req.insert("User-Agent", "Go-http-client/1.1");
    req.insert("Connection", "Upgrade");
    req.insert("Connectionuse", "msg");
    req.insert("Node_id", node->name());
    req.insert("Project_id", options->project_id);
    req.insert("Sec-WebSocket-Key", key);
    req.insert("Sec-WebSocket-Version", "13");
    req.insert("Upgrade", "websocket");
  }
};

template <class NextLayer>
class LinkT final : public Link, public std::enable_shared_from_this<LinkT<NextLayer>> {
 public:
  LinkT(Worker& worker, Node& node, std::uint32_t epoch, NextLayer next)
      : worker_(worker), node_(node), epoch_(epoch), ws_(std::move(next)) {}

  void start() override {
    auto& sock = beast::get_lowest_layer(ws_);
    error_code ec;
    sock.open(tcp::v4(), ec);
    if (!ec && worker_.options.source_addrs > 0) {
      // Port chosen at connect() for the full 4-tuple, not at bind(): each source address
      // then has its own 64k ports towards the hub.
      const int one = 1;
      ::setsockopt(sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
      const auto base = asio::ip::make_address_v4("127.0.0.2").to_uint();
      const auto addr = asio::ip::address_v4(
          base + static_cast<std::uint32_t>(node_.index() % worker_.options.source_addrs));
      sock.bind(tcp::endpoint(addr, 0), ec);
    }
    if (ec) return fail(ec, "socket");
    sock.async_connect(worker_.hub, [self = this->shared_from_this()](error_code e) {
      self->on_tcp(e);
    });
  }

  void send(std::string payload) override {
    if (closed_) return;
    queue_.push_back(std::move(payload));
    if (queue_.size() == 1) do_write();
  }

  void close() override {
    closed_ = true;
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
  }

  void resume_read() override {
    if (!closed_) do_read();
  }

  void abandon() override {
    // A read may be pending: its completion sees closed_ and neither reports nor reads again.
    // The socket stays open until close() (node shutdown) so the hub sees no FIN.
    closed_ = true;
    abandoned_ = true;
  }

 private:
  void on_tcp(error_code ec) {
    if (ec) return fail(ec, "connect");
    if constexpr (std::is_same_v<NextLayer, net::TlsStream>) {
      auto& tls = ws_.next_layer();
      tls.set_server_name(worker_.options.host, worker_.options.verify_hostname);
      if (node_.credentials().cert) {
        tls.use_certificate(node_.credentials().cert.get(), node_.credentials().key.get());
      }
      tls.async_handshake(net::HandshakeRole::client,
                          [self = this->shared_from_this()](error_code e, std::size_t) {
                            self->on_tls(e);
                          });
    } else {
      on_tls({});
    }
  }

  void on_tls(error_code ec) {
    if (ec) return fail(ec, "tls");
    host_ = worker_.options.host + ":" + std::to_string(worker_.options.port);
    ws_.set_option(websocket::stream_base::decorator(
        EdgecoreHeaders{&node_, &worker_.options, &host_}));
    ws_.write_buffer_bytes(worker_.options.ws_write_buffer);
    ws_.auto_fragment(false);
    ws_.text(true);
    const std::string target = "/" + worker_.options.project_id + "/" + node_.name() + "/events";
    ws_.async_handshake(upgrade_response_, host_, target,
                        [self = this->shared_from_this()](error_code e) { self->on_upgrade(e); });
  }

  void on_upgrade(error_code ec) {
    if (ec) return fail(ec, "upgrade");
    std::string().swap(host_);
    upgraded_ = true;
    std::string replica(upgrade_response_["X-Edgehub-Replica"]);
    websocket::response_type().swap(upgrade_response_);
    node_.on_connected(epoch_, std::move(replica));
    if (!closed_) do_read();
  }

  void do_read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](error_code e, std::size_t) {
      self->on_read(e);
    });
  }

  void on_read(error_code ec) {
    if (abandoned_) return;
    if (ec) return fail(ec, "read");
    const auto data = buffer_.cdata();
    const bool go_on = node_.on_message(
        epoch_, std::string_view(static_cast<const char*>(data.data()), data.size()));
    // An idle node keeps no read buffer.
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (go_on && !closed_) do_read();
  }

  void do_write() {
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = this->shared_from_this()](error_code e, std::size_t) {
                      self->on_write(e);
                    });
  }

  void on_write(error_code ec) {
    if (abandoned_) return;
    if (ec) return fail(ec, "write");
    queue_.erase(queue_.begin());
    if (queue_.empty()) {
      std::vector<std::string>().swap(queue_);
    } else if (!closed_) {
      do_write();
    }
  }

  void fail(error_code ec, std::string_view stage) {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    beast::get_lowest_layer(ws_).close(ignored);
    node_.on_closed(epoch_, ec, stage, upgraded_);
  }

  Worker& worker_;
  Node& node_;
  std::uint32_t epoch_;
  websocket::stream<NextLayer> ws_;
  beast::flat_buffer buffer_;
  std::vector<std::string> queue_;
  std::string host_;
  websocket::response_type upgrade_response_;
  bool closed_ = false;
  bool upgraded_ = false;
  bool abandoned_ = false;
};

}  // namespace

std::shared_ptr<Link> make_link(Worker& worker, Node& node, std::uint32_t epoch) {
  if (worker.tls != nullptr) {
    return std::make_shared<LinkT<net::TlsStream>>(
        worker, node, epoch, net::TlsStream(worker.ioc.get_executor(), *worker.tls));
  }
  return std::make_shared<LinkT<tcp::socket>>(worker, node, epoch, tcp::socket(worker.ioc));
}

}  // namespace edgehub::sim

#pragma once
// A minimal edge for hub tests: one WebSocket connection over TLS (or plain), driven
// synchronously from the test thread with a deadline on every step.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <edgehub/wire/message.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace edgehub::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;

template <class Stream>
class EdgeClient {
 public:
  explicit EdgeClient(Stream stream) : ws_(std::move(stream)) {}

  // Runs the client's io_context until `done` or the deadline.
  template <class Done>
  void run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) throw std::runtime_error("edge client: timed out");
      io.run_for(std::chrono::milliseconds(20));
      io.restart();
    }
  }

  // Upgrades with the headers edgecore sends; returns the HTTP status (101 on success).
  int upgrade(asio::io_context& io, const std::string& node, std::string* body = nullptr,
              std::vector<std::pair<std::string, std::string>> extra_headers = {}) {
    ws_.set_option(websocket::stream_base::decorator([node, extra_headers](websocket::request_type& req) {
      req.set(beast::http::field::user_agent, "Go-http-client/1.1");
      req.set("Connectionuse", "msg");
      req.set("Node_id", node);
      req.set("Project_id", "e632aba927ea4ac2b575ec1603d56f10");
      for (const auto& [name, value] : extra_headers) req.set(name, value);
    }));
    bool done = false;
    error_code result;
    ws_.async_handshake(response_, "127.0.0.1", "/e632aba927ea4ac2b575ec1603d56f10/" + node + "/events",
                        [&](error_code ec) {
                          result = ec;
                          done = true;
                        });
    run_until(io, [&] { return done; });
    if (body) *body = response_.body();
    return response_.result_int();
  }

  void send(asio::io_context& io, const std::string& text) {
    bool done = false;
    error_code result;
    ws_.text(true);
    ws_.async_write(asio::buffer(text), [&](error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    run_until(io, [&] { return done; });
    if (result) throw std::runtime_error("edge client: write failed: " + result.message());
  }

  // The next message, or nullopt when the connection ended (close_reason() tells why).
  // A read that timed out stays pending and the next call waits for that same read: Beast
  // allows one read at a time, and a second one started beside it would be parked behind it,
  // so the next message would complete the abandoned read (whose handler wrote into a dead
  // stack frame) and be lost to the caller.
  std::optional<wire::Message> read(asio::io_context& io,
                                    std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    if (!reading_) {
      reading_ = true;
      read_done_ = false;
      buffer_.clear();
      ws_.async_read(buffer_, [this](error_code ec, std::size_t) {
        read_result_ = ec;
        read_done_ = true;
      });
    }
    run_until(io, [&] { return read_done_; }, limit);
    reading_ = false;
    if (read_result_) {
      error_ = read_result_;
      return std::nullopt;
    }
    auto m = wire::decode(beast::buffers_to_string(buffer_.data()));
    if (!m) throw std::runtime_error("edge client: hub sent undecodable " + m.error().message);
    return *m;
  }

  websocket::close_reason close_reason() const { return ws_.reason(); }
  error_code error() const { return error_; }
  websocket::stream<Stream>& ws() { return ws_; }

 private:
  websocket::stream<Stream> ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  error_code error_;
  bool reading_ = false;  // a read is pending (possibly one that timed out)
  bool read_done_ = false;
  error_code read_result_;
};

// A TLS client of 127.0.0.1:`port` after its handshake (`error` set when it failed), the
// server's certificate checked for 127.0.0.1 when `check_name`.
inline EdgeClient<net::TlsStream> tls_edge_client(asio::io_context& io, const net::TlsContext& tls,
                                                  std::uint16_t port, error_code& error,
                                                  bool check_name = true) {
  net::TlsStream stream(io.get_executor(), tls);
  stream.socket().connect({asio::ip::make_address("127.0.0.1"), port});
  if (check_name) stream.set_server_name("127.0.0.1", true);
  EdgeClient<net::TlsStream> client(std::move(stream));
  bool done = false;
  client.ws().next_layer().async_handshake(net::HandshakeRole::client, [&](error_code e, std::size_t) {
    error = e;
    done = true;
  });
  client.run_until(io, [&] { return done; });
  return client;
}

}  // namespace edgehub::test

#pragma once

// A loopback HTTP/1.1 server for client tests: it answers each request with whatever the
// test's handler returns (recorded sample bodies, chunked watch streams, dropped connections,
// silence). It runs on the test's io_context, on port 0.

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::kube::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// A watch stream the test feeds while the client reads it.
class LiveStream {
 public:
  explicit LiveStream(net::any_io_executor ex) : notify_(ex, net::steady_timer::time_point::max()) {}
  void push(std::string data) {
    pending_.push_back(std::move(data));
    notify_.cancel();
  }
  void finish() {
    state_ = State::Finished;
    notify_.cancel();
  }
  void drop() {
    state_ = State::Dropped;
    notify_.cancel();
  }
  bool attached() const { return attached_; }

  enum class State { Open, Finished, Dropped };
  net::steady_timer notify_;
  std::deque<std::string> pending_;
  State state_ = State::Open;
  bool attached_ = false;
};

struct Reply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Chunked transfer: the body goes out as these chunks.
  bool chunked = false;
  std::vector<std::string> chunks;
  enum class End { Finish, Drop, Silence } end = End::Finish;  // after the last chunk
  bool close = false;                   // Connection: close
  bool silent_close_after = false;      // close the kept-alive connection without saying so
  bool no_answer = false;               // read the request, never answer
  std::shared_ptr<LiveStream> live;     // chunked, fed by the test
};

struct Recorded {
  std::string method;
  std::string target;
  std::string authorization;
  std::string user_agent;
  std::string accept;
  std::string content_type;
  std::string body;
};

// Splits `text` into chunks of pseudo-random sizes in [1, max].
inline std::vector<std::string> random_chunks(const std::string& text, unsigned seed, std::size_t max) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  unsigned x = seed * 2654435761u + 1;
  while (pos < text.size()) {
    x = x * 1103515245u + 12345u;
    std::size_t n = 1 + (x >> 8) % max;
    out.push_back(text.substr(pos, n));
    pos += n;
  }
  return out;
}

class ReplayServer {
 public:
  using Handler = std::function<Reply(const Recorded&)>;

  ReplayServer(net::io_context& io, Handler handler)
      : io_(io), acceptor_(io, {net::ip::make_address("127.0.0.1"), 0}), handler_(std::move(handler)) {
    net::co_spawn(io_, accept_loop(), net::detached);
  }
  ~ReplayServer() { stop(); }

  unsigned short port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void stop() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& w : sockets_) {
      if (auto s = w.lock()) s->close(ec);
    }
  }
  // Closes every open connection (what a restarting API server does).
  void drop_all() {
    boost::system::error_code ec;
    for (auto& w : sockets_) {
      if (auto s = w.lock()) s->close(ec);
    }
  }

  std::vector<Recorded> requests;
  std::size_t connections = 0;

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++connections;
      auto s = std::make_shared<net::ip::tcp::socket>(std::move(sock));
      sockets_.push_back(s);
      net::co_spawn(io_, serve(s), net::detached);
    }
  }

  static std::string status_line(int status) {
    return "HTTP/1.1 " + std::to_string(status) + " " +
           std::string(http::obsolete_reason(static_cast<http::status>(status))) + "\r\n";
  }

  static std::string chunk(const std::string& data) {
    std::ostringstream os;
    os << std::hex << data.size() << "\r\n" << data << "\r\n";
    return os.str();
  }

  net::awaitable<void> serve(std::shared_ptr<net::ip::tcp::socket> sock) {
    constexpr auto tok = net::as_tuple(net::use_awaitable);
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      auto [ec, n] = co_await http::async_read(*sock, buf, req, tok);
      if (ec) co_return;
      Recorded rec{std::string(req.method_string()), std::string(req.target()),
                   std::string(req[http::field::authorization]), std::string(req[http::field::user_agent]),
                   std::string(req[http::field::accept]), std::string(req[http::field::content_type]),
                   req.body()};
      requests.push_back(rec);
      Reply reply = handler_(rec);
      if (reply.no_answer) {
        net::steady_timer forever(io_, net::steady_timer::time_point::max());
        co_await forever.async_wait(tok);
        co_return;
      }
      std::string head = status_line(reply.status);
      bool has_type = false;
      for (auto& [k, v] : reply.headers) {
        head += k + ": " + v + "\r\n";
        if (beast::iequals(k, "content-type")) has_type = true;
      }
      if (!has_type) head += "Content-Type: application/json\r\n";
      if (reply.close) head += "Connection: close\r\n";
      bool chunked = reply.chunked || reply.live;
      if (chunked) {
        head += "Transfer-Encoding: chunked\r\n\r\n";
      } else {
        head += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
      }
      if (auto [wec, wn] = co_await net::async_write(*sock, net::buffer(head), tok); wec) co_return;
      if (chunked) {
        for (const auto& c : reply.chunks) {
          if (c.empty()) continue;
          if (auto [wec, wn] = co_await net::async_write(*sock, net::buffer(chunk(c)), tok); wec) co_return;
        }
        Reply::End end = reply.end;
        if (reply.live) {
          auto live = reply.live;
          live->attached_ = true;
          for (;;) {
            while (!live->pending_.empty()) {
              std::string c = chunk(live->pending_.front());
              live->pending_.pop_front();
              if (auto [wec, wn] = co_await net::async_write(*sock, net::buffer(c), tok); wec) co_return;
            }
            if (live->state_ == LiveStream::State::Finished) {
              end = Reply::End::Finish;
              break;
            }
            if (live->state_ == LiveStream::State::Dropped) {
              end = Reply::End::Drop;
              break;
            }
            live->notify_.expires_at(net::steady_timer::time_point::max());
            co_await live->notify_.async_wait(tok);
            if (!sock->is_open()) co_return;
          }
        }
        if (end == Reply::End::Drop) {
          boost::system::error_code ignored;
          sock->shutdown(net::ip::tcp::socket::shutdown_both, ignored);
          sock->close(ignored);
          co_return;
        }
        if (end == Reply::End::Silence) {
          net::steady_timer forever(io_, net::steady_timer::time_point::max());
          co_await forever.async_wait(tok);
          co_return;
        }
        std::string last = "0\r\n\r\n";
        if (auto [wec, wn] = co_await net::async_write(*sock, net::buffer(last), tok); wec) co_return;
      }
      if (reply.close || reply.silent_close_after) {
        boost::system::error_code ignored;
        sock->shutdown(net::ip::tcp::socket::shutdown_send, ignored);
        sock->close(ignored);
        co_return;
      }
    }
  }

  net::io_context& io_;
  net::ip::tcp::acceptor acceptor_;
  unsigned short port_ = acceptor_.local_endpoint().port();
  Handler handler_;
  std::vector<std::weak_ptr<net::ip::tcp::socket>> sockets_;
};

// Runs `io` until `done()` holds. The deadline only turns a hang into a failure.
template <class Pred>
bool run_until(net::io_context& io, Pred done, std::chrono::seconds deadline = std::chrono::seconds(20)) {
  auto stop_at = std::chrono::steady_clock::now() + deadline;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() > stop_at) return false;
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

// Runs an awaitable to completion on `io` and returns its result.
template <class T>
T await(net::io_context& io, net::awaitable<T> task) {
  std::optional<T> out;
  std::exception_ptr error;
  net::co_spawn(io, std::move(task), [&](std::exception_ptr e, T v) {
    error = e;
    out.emplace(std::move(v));
  });
  bool finished = run_until(io, [&] { return out.has_value() || error; });
  if (error) std::rethrow_exception(error);
  if (!finished) throw std::runtime_error("operation did not complete");
  return std::move(*out);
}

}  // namespace edgehub::kube::testing

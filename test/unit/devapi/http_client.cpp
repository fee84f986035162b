#include "http_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

namespace edgehub::devapi::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

void set_timeout(tcp::socket& socket, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

HttpResult http_call(std::uint16_t port, const HttpCall& call) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  set_timeout(socket, std::chrono::seconds(20));
  http::request<http::string_body> request(http::string_to_verb(call.method), call.target, 11);
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::connection, "close");
  for (const auto& [name, value] : call.headers) request.set(name, value);
  if (!call.body.empty() || call.method == "POST" || call.method == "PUT" ||
      call.method == "PATCH") {
    request.set(http::field::content_type, call.content_type);
    request.body() = call.body;
  }
  request.prepare_payload();
  http::write(socket, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response);
  HttpResult result;
  result.status = static_cast<int>(response.result_int());
  for (const auto& field : response) {
    result.headers[lower(std::string(field.name_string()))] = std::string(field.value());
  }
  result.body = std::move(response.body());
  return result;
}

struct WatchStream::Impl {
  asio::io_context ioc;
  tcp::socket socket{ioc};
};

WatchStream::WatchStream(std::uint16_t port, const std::string& target,
                         std::chrono::milliseconds timeout, int receive_buffer)
    : impl_(new Impl) {
  impl_->socket.open(tcp::v4());
  if (receive_buffer > 0) {
    impl_->socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
  }
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  set_timeout(impl_->socket, timeout);
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n";
  asio::write(impl_->socket, asio::buffer(request));
}

WatchStream::~WatchStream() {
  boost::system::error_code ec;
  impl_->socket.close(ec);
  delete impl_;
}

bool WatchStream::fill() {
  if (eof_) return false;
  char buf[65536];
  boost::system::error_code ec;
  const std::size_t n = impl_->socket.read_some(asio::buffer(buf), ec);
  if (ec == asio::error::eof || ec == asio::error::connection_reset) {
    eof_ = true;
    return false;
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again ||
      ec == asio::error::timed_out) {
    throw std::runtime_error("watch stream: nothing received before the timeout");
  }
  if (ec) throw std::runtime_error("watch stream: " + ec.message());
  raw_.append(buf, n);
  return true;
}

void WatchStream::read_header() {
  while (!header_done_) {
    const auto end = raw_.find("\r\n\r\n");
    if (end != std::string::npos) {
      const std::string head = raw_.substr(0, end);
      raw_.erase(0, end + 4);
      header_done_ = true;
      status_ = std::stoi(head.substr(9, 3));
      std::size_t pos = head.find("\r\n");
      while (pos != std::string::npos) {
        const std::size_t next = head.find("\r\n", pos + 2);
        const std::string line =
            head.substr(pos + 2, next == std::string::npos ? next : next - pos - 2);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          headers_[lower(line.substr(0, colon))] = value;
        }
        pos = next;
      }
      return;
    }
    if (!fill()) throw std::runtime_error("watch stream: connection closed before the header");
  }
}

int WatchStream::status() {
  read_header();
  return status_;
}

const std::map<std::string, std::string>& WatchStream::headers() {
  read_header();
  return headers_;
}

std::optional<nlohmann::json> WatchStream::next() {
  read_header();
  const bool chunked = lower(headers_["transfer-encoding"]) == "chunked";
  for (;;) {
    const auto newline = body_.find('\n');
    if (newline != std::string::npos) {
      std::string line = body_.substr(0, newline);
      body_.erase(0, newline + 1);
      if (line.empty()) continue;
      return nlohmann::json::parse(line);
    }
    if (ended_) return std::nullopt;
    if (!chunked) {
      body_ += raw_;
      raw_.clear();
      if (!fill()) {
        ended_ = true;
        body_ += raw_;
        raw_.clear();
      }
      continue;
    }
    // Decode as many complete chunks as are buffered.
    bool progressed = false;
    for (;;) {
      const auto line_end = raw_.find("\r\n");
      if (line_end == std::string::npos) break;
      const std::size_t size = std::stoul(raw_.substr(0, line_end), nullptr, 16);
      if (size == 0) {
        ended_ = true;
        progressed = true;
        break;
      }
      if (raw_.size() < line_end + 2 + size + 2) break;
      body_.append(raw_, line_end + 2, size);
      raw_.erase(0, line_end + 2 + size + 2);
      progressed = true;
    }
    if (progressed) continue;
    if (!fill()) ended_ = true;
  }
}

}  // namespace edgehub::devapi::testing

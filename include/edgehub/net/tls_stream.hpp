#pragma once
// A TLS stream that runs OpenSSL directly on the socket's file descriptor.
//
// Why not asio::ssl::stream: its engine keeps ~68 KiB of fixed buffers per stream. Here the
// SSL* reads and writes the non-blocking fd itself (SSL_set_fd) and only the readiness comes
// from Asio (socket::async_wait), so an idle connection costs what OpenSSL holds (~19 KiB with
// SSL_MODE_RELEASE_BUFFERS) — or, on a TLS 1.3 server after release_handshake_state(), only
// the traffic keys (Tls13Records, ~0.3 KiB). Satisfies Beast's AsyncStream: use it as
// `boost::beast::websocket::stream<edgehub::net::TlsStream>`.
//
// Threading: like every Asio I/O object, one stream must only be used from one thread (or
// strand) at a time. At most one read and one write may be outstanding at once (Beast's
// websocket honours this); both share the SSL*, which is safe because they never run
// concurrently, and each retries after any readiness wakeup.

#include <openssl/ssl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <edgehub/net/tls13_records.hpp>
#include <edgehub/net/tls_context.hpp>
#include <memory>
#include <string>

namespace edgehub::net {

namespace asio = boost::asio;
using boost::system::error_code;

enum class HandshakeRole { client, server };

// Errors of TLS operations. The value is OpenSSL's packed error code (ERR_get_error), the
// message OpenSSL's reason string; certificate failures also carry the verify result text.
const boost::system::error_category& tls_category();

// Peer closed the TCP connection without a TLS close_notify (a truncation attack, or simply
// a peer that dropped the socket). Distinct from asio::error::eof (clean close_notify).
const error_code& stream_truncated_error();

namespace detail {
struct SslDeleter {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

// Runs fn(ssl, bytes) → SSL return code and classifies the result. On failure sets ec with the
// error from OpenSSL's queue (cleared afterwards).
Step classify(SSL* ssl, int ret, bool reading, error_code& ec);
// One attempt at each operation.
Step try_read(SSL* ssl, void* data, std::size_t size, std::size_t& n, error_code& ec);
Step try_write(SSL* ssl, const void* data, std::size_t size, std::size_t& n, error_code& ec);
Step try_handshake(SSL* ssl, error_code& ec);
Step try_shutdown(SSL* ssl, error_code& ec);
// Thread-local 16 KiB scratch to coalesce scattered writes into one TLS record.
asio::mutable_buffer write_scratch();
}  // namespace detail

class TlsStream {
 public:
  // io_context's own executor (8 bytes), not any_io_executor (56): a copy lives in the socket,
  // in Beast's and the session's timers and in every pending operation of every connection.
  using executor_type = asio::io_context::executor_type;
  using socket_type = asio::basic_stream_socket<asio::ip::tcp, executor_type>;
  using next_layer_type = socket_type;
  using lowest_layer_type = socket_type;

  // A stream over a new, closed socket; open/bind/connect socket() before the handshake.
  TlsStream(const executor_type& ex, const TlsContext& ctx);
  // A stream over an accepted (or already connected) socket.
  TlsStream(socket_type socket, const TlsContext& ctx);
  // The same over a socket with a type-erased executor, which must be an io_context's (the
  // descriptor moves to a socket of socket_type; throws std::invalid_argument otherwise).
  TlsStream(asio::ip::tcp::socket socket, const TlsContext& ctx);

  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  socket_type& socket() noexcept { return socket_; }
  socket_type& next_layer() noexcept { return socket_; }
  socket_type& lowest_layer() noexcept { return socket_; }
  // Null once release_handshake_state() succeeded.
  SSL* native_handle() noexcept { return ssl_.get(); }

  // Client side: SNI server name and, if verify_host, RFC 6125 host / IP check of the peer's
  // certificate. Call before async_handshake.
  void set_server_name(const std::string& host, bool verify_host);
  // Per-connection client (or server) certificate, overriding the context's. Takes references.
  bool use_certificate(X509* cert, EVP_PKEY* key);

  // After a TLS 1.3 handshake on the server side, before any application data: frees
  // OpenSSL's whole per-connection state (~19 KiB: the SSL, its session, the peer's parsed
  // certificate, the handshake's leftovers) and carries on with only the traffic keys
  // (Tls13Records, ~0.3 KiB). False, and nothing changes, for TLS 1.2, a cipher suite
  // Tls13Records does not do, session tickets on, or bytes OpenSSL already holds. Read what
  // is wanted of the peer's certificate first: it is gone afterwards.
  bool release_handshake_state();
  bool handshake_state_released() const noexcept { return records_ != nullptr; }

  // Peer certificate subject CN, empty if none (or released).
  std::string peer_common_name() const;
  // Why the peer's certificate failed verification ("" if it did not).
  std::string verify_error() const;

  // Completion: void(error_code, std::size_t) (the size is always 0).
  template <class Token>
  auto async_handshake(HandshakeRole role, Token&& token);
  // Sends close_notify and waits for the peer's (a peer that just closes TCP also ends it).
  // Completion: void(error_code, std::size_t).
  template <class Token>
  auto async_shutdown(Token&& token);
  // Sends close_notify only (the peer's is not awaited). Completion: void(error_code, size_t).
  template <class Token>
  auto async_close_notify(Token&& token);
  // Completion: void(error_code, std::size_t).
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token);
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token);

 private:
  template <class Attempt>
  struct IoOp;
  // One attempt of each operation, on OpenSSL or, once released, on the records.
  detail::Step handshake_step(error_code& ec);
  detail::Step read_step(void* data, std::size_t size, std::size_t& n, error_code& ec);
  detail::Step write_step(const void* data, std::size_t size, std::size_t& n, error_code& ec);
  detail::Step shutdown_step(error_code& ec);
  detail::Step close_notify_step(error_code& ec);
  friend void teardown(boost::beast::role_type role, TlsStream& stream, error_code& ec);
  void attach(const TlsContext& ctx);
  // Binds the SSL* to the (now connected) socket's fd and makes the fd non-blocking.
  void bind_fd();

  socket_type socket_;
  std::unique_ptr<SSL, detail::SslDeleter> ssl_;
  std::unique_ptr<Tls13Records> records_;
};

// --- implementation -------------------------------------------------------------------------

// One composed operation: try the SSL call, wait for whatever readiness it asks for, retry.
// The first completion is posted when no wait happened, so handlers never run inside the
// initiating function.
template <class Attempt>
struct TlsStream::IoOp {
  TlsStream& stream;
  Attempt attempt;  // detail::Step(TlsStream&, std::size_t& n, error_code& ec)
  enum { starting, waiting, finishing } state = starting;
  error_code result_ec{};
  std::size_t result_n = 0;

  template <class Self>
  void operator()(Self& self, error_code wait_ec = {}) {
    if (state == finishing) return self.complete(result_ec, result_n);
    if (wait_ec) return self.complete(wait_ec, 0);
    std::size_t n = 0;
    error_code ec;
    switch (attempt(stream, n, ec)) {
      case detail::Step::want_read:
        state = waiting;
        return stream.socket_.async_wait(socket_type::wait_read, std::move(self));
      case detail::Step::want_write:
        state = waiting;
        return stream.socket_.async_wait(socket_type::wait_write, std::move(self));
      case detail::Step::done:
      case detail::Step::failed:
        break;
    }
    if (state == waiting) return self.complete(ec, n);
    result_ec = ec;
    result_n = n;
    state = finishing;
    asio::post(stream.socket_.get_executor(), std::move(self));
  }
};

template <class Token>
auto TlsStream::async_handshake(HandshakeRole role, Token&& token) {
  bind_fd();
  if (role == HandshakeRole::client) {
    SSL_set_connect_state(ssl_.get());
  } else {
    SSL_set_accept_state(ssl_.get());
  }
  auto attempt = [](TlsStream& s, std::size_t&, error_code& ec) { return s.handshake_step(ec); };
  return asio::async_compose<Token, void(error_code, std::size_t)>(
      IoOp<decltype(attempt)>{*this, attempt}, token, socket_);
}

template <class Token>
auto TlsStream::async_shutdown(Token&& token) {
  auto attempt = [](TlsStream& s, std::size_t&, error_code& ec) { return s.shutdown_step(ec); };
  return asio::async_compose<Token, void(error_code, std::size_t)>(
      IoOp<decltype(attempt)>{*this, attempt}, token, socket_);
}

template <class Token>
auto TlsStream::async_close_notify(Token&& token) {
  auto attempt = [](TlsStream& s, std::size_t&, error_code& ec) {
    return s.close_notify_step(ec);
  };
  return asio::async_compose<Token, void(error_code, std::size_t)>(
      IoOp<decltype(attempt)>{*this, attempt}, token, socket_);
}

template <class MutableBuffers, class Token>
auto TlsStream::async_read_some(const MutableBuffers& buffers, Token&& token) {
  asio::mutable_buffer first;
  for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
       ++it) {
    first = *it;
    if (first.size() != 0) break;
  }
  auto attempt = [first](TlsStream& s, std::size_t& n, error_code& ec) {
    if (first.size() == 0) return detail::Step::done;
    return s.read_step(first.data(), first.size(), n, ec);
  };
  return asio::async_compose<Token, void(error_code, std::size_t)>(
      IoOp<decltype(attempt)>{*this, attempt}, token, socket_);
}

template <class ConstBuffers, class Token>
auto TlsStream::async_write_some(const ConstBuffers& buffers, Token&& token) {
  // Beast writes a frame header and its payload as separate buffers; one TLS record for both
  // saves a record (and a syscall). Copied again on every retry, which OpenSSL allows with
  // SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER as long as the bytes are the same.
  auto attempt = [buffers](TlsStream& s, std::size_t& n, error_code& ec) {
    const auto prefix = boost::beast::buffers_prefix(16 * 1024, buffers);
    const std::size_t total = asio::buffer_size(prefix);
    if (total == 0) return detail::Step::done;
    auto begin = asio::buffer_sequence_begin(prefix);
    if (asio::const_buffer one = *begin; one.size() == total) {
      return s.write_step(one.data(), one.size(), n, ec);
    }
    const asio::mutable_buffer scratch = detail::write_scratch();
    const std::size_t copied = asio::buffer_copy(scratch, prefix);
    return s.write_step(scratch.data(), copied, n, ec);
  };
  return asio::async_compose<Token, void(error_code, std::size_t)>(
      IoOp<decltype(attempt)>{*this, attempt}, token, socket_);
}

// Beast's websocket close: send close_notify (without waiting for the peer's), then close the
// socket. Found by ADL from websocket::stream<TlsStream>.
void teardown(boost::beast::role_type role, TlsStream& stream, error_code& ec);

template <class TeardownHandler>
void async_teardown(boost::beast::role_type /*role*/, TlsStream& stream,
                    TeardownHandler&& handler) {
  asio::async_compose<TeardownHandler, void(error_code)>(
      [&stream, started = false](auto& self, error_code = {}, std::size_t = 0) mutable {
        if (!started) {
          started = true;
          return stream.async_close_notify(std::move(self));
        }
        // A failed close_notify still ends in closing the socket; the websocket close
        // handshake already told the peer we are done.
        error_code ignored;
        stream.socket().shutdown(TlsStream::socket_type::shutdown_both, ignored);
        stream.socket().close(ignored);
        self.complete(error_code{});
      },
      handler, stream.socket());
}

}  // namespace edgehub::net

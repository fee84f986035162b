#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <csignal>
#include <mutex>
#include <stdexcept>

#include <boost/asio/ssl/error.hpp>
#include <edgehub/net/tls_stream.hpp>

namespace edgehub::net {
namespace {

class TlsCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "edgehub.tls"; }
  std::string message(int ev) const override {
    if (ev == 0) return "success";
    char buf[256];
    ERR_error_string_n(static_cast<unsigned long>(ev), buf, sizeof(buf));
    return buf;
  }
};

}  // namespace

const boost::system::error_category& tls_category() {
  static const TlsCategory category;
  return category;
}

const error_code& stream_truncated_error() {
  static const error_code ec = asio::ssl::error::stream_truncated;
  return ec;
}

namespace detail {

Step classify(SSL* ssl, int ret, bool reading, error_code& ec) {
  const int err = SSL_get_error(ssl, ret);
  switch (err) {
    case SSL_ERROR_NONE:
      return Step::done;
    case SSL_ERROR_WANT_READ:
      return Step::want_read;
    case SSL_ERROR_WANT_WRITE:
      return Step::want_write;
    case SSL_ERROR_ZERO_RETURN:  // peer sent close_notify
      ec = asio::error::eof;
      return Step::failed;
    case SSL_ERROR_SYSCALL: {
      const unsigned long queued = ERR_peek_last_error();
      ERR_clear_error();
      if (queued != 0) {
        ec.assign(static_cast<int>(queued), tls_category());
      } else if (errno != 0 && errno != EAGAIN) {
        ec.assign(errno, boost::system::system_category());
      } else {
        ec = reading ? stream_truncated_error() : error_code(asio::error::broken_pipe);
      }
      return Step::failed;
    }
    default: {
      const unsigned long code = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ec = stream_truncated_error();
      } else {
        ec.assign(code != 0 ? static_cast<int>(code) : -1, tls_category());
      }
      return Step::failed;
    }
  }
}

Step try_read(SSL* ssl, void* data, std::size_t size, std::size_t& n, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_read_ex(ssl, data, size, &n);
  if (ret == 1) return Step::done;
  n = 0;
  return classify(ssl, ret, true, ec);
}

Step try_write(SSL* ssl, const void* data, std::size_t size, std::size_t& n, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_write_ex(ssl, data, size, &n);
  if (ret == 1) return Step::done;
  n = 0;
  return classify(ssl, ret, false, ec);
}

Step try_handshake(SSL* ssl, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl);
  if (ret == 1) return Step::done;
  return classify(ssl, ret, true, ec);
}

Step try_shutdown(SSL* ssl, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_shutdown(ssl);
  if (ret == 1) return Step::done;
  if (ret == 0) {  // close_notify sent; now wait for the peer's
    return try_shutdown(ssl, ec);
  }
  const Step step = classify(ssl, ret, true, ec);
  if (step == Step::failed && (ec == asio::error::eof || ec == stream_truncated_error())) {
    ec = {};  // the peer closed: that is the end of a shutdown too
    return Step::done;
  }
  return step;
}

asio::mutable_buffer write_scratch() {
  thread_local unsigned char buf[16 * 1024];
  return {buf, sizeof(buf)};
}

}  // namespace detail

TlsStream::TlsStream(const executor_type& ex, const TlsContext& ctx) : socket_(ex) {
  attach(ctx);
}

TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

TlsStream::TlsStream(socket_type socket, const TlsContext& ctx) : socket_(std::move(socket)) {
  attach(ctx);
}

namespace {

TlsStream::socket_type adopt(asio::ip::tcp::socket socket) {
  const auto* ex = socket.get_executor().target<TlsStream::executor_type>();
  if (ex == nullptr) {
    throw std::invalid_argument("TlsStream: the socket's executor is not an io_context's");
  }
  if (!socket.is_open()) return TlsStream::socket_type(*ex);
  error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  auto fd = ec ? -1 : socket.release(ec);
  if (ec || fd < 0) {  // the peer's problem at worst: the handshake then fails on a closed socket
    socket.close(ec);
    return TlsStream::socket_type(*ex);
  }
  return TlsStream::socket_type(*ex, protocol, fd);
}

}  // namespace

TlsStream::TlsStream(asio::ip::tcp::socket socket, const TlsContext& ctx)
    : socket_(adopt(std::move(socket))) {
  attach(ctx);
}

void TlsStream::bind_fd() {
  if (!socket_.is_open() || SSL_get_fd(ssl_.get()) == socket_.native_handle()) return;
  error_code ignored;
  socket_.non_blocking(true, ignored);
  SSL_set_fd(ssl_.get(), socket_.native_handle());
}

std::string TlsStream::verify_error() const {
  if (!ssl_) return {};
  const long result = SSL_get_verify_result(ssl_.get());
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

void TlsStream::attach(const TlsContext& ctx) {
  // OpenSSL writes the fd with write(2), not send(MSG_NOSIGNAL): a peer that already closed
  // would kill the process with SIGPIPE. A network daemon wants EPIPE instead.
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] { std::signal(SIGPIPE, SIG_IGN); });
  ssl_.reset(SSL_new(ctx.native_handle()));
  if (!ssl_) throw TlsError("SSL_new failed: " + drain_openssl_errors());
}

void TlsStream::set_server_name(const std::string& host, bool verify_host) {
  SSL_set_tlsext_host_name(ssl_.get(), host.c_str());
  if (verify_host) {
    SSL_set_hostflags(ssl_.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    // SSL_set1_host matches an IP literal against IP SANs, a name against DNS SANs.
    SSL_set1_host(ssl_.get(), host.c_str());
  }
}

bool TlsStream::use_certificate(X509* cert, EVP_PKEY* key) {
  return SSL_use_certificate(ssl_.get(), cert) == 1 && SSL_use_PrivateKey(ssl_.get(), key) == 1;
}

std::string TlsStream::peer_common_name() const {
  if (!ssl_) return {};
  X509* peer = SSL_get0_peer_certificate(ssl_.get());
  if (peer == nullptr) return {};
  char buf[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf,
                                          sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool TlsStream::release_handshake_state() {
  if (records_) return false;
  records_ = Tls13Records::take_over(ssl_.get());
  if (!records_) return false;
  ssl_.reset();
  return true;
}

detail::Step TlsStream::handshake_step(error_code& ec) {
  if (!ssl_) {
    ec = asio::error::operation_not_supported;
    return detail::Step::failed;
  }
  return detail::try_handshake(ssl_.get(), ec);
}

detail::Step TlsStream::read_step(void* data, std::size_t size, std::size_t& n, error_code& ec) {
  if (records_) return records_->read(socket_.native_handle(), data, size, n, ec);
  return detail::try_read(ssl_.get(), data, size, n, ec);
}

detail::Step TlsStream::write_step(const void* data, std::size_t size, std::size_t& n,
                                   error_code& ec) {
  if (records_) return records_->write(socket_.native_handle(), data, size, n, ec);
  return detail::try_write(ssl_.get(), data, size, n, ec);
}

detail::Step TlsStream::close_notify_step(error_code& ec) {
  if (records_) return records_->close_notify(socket_.native_handle(), ec);
  SSL* ssl = ssl_.get();
  // Sent, unless its write blocked: then SSL_shutdown again finishes sending it.
  if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) && !SSL_want_write(ssl)) {
    return detail::Step::done;
  }
  const int ret = SSL_shutdown(ssl);
  if (ret >= 0) return detail::Step::done;
  return detail::classify(ssl, ret, false, ec);
}

detail::Step TlsStream::shutdown_step(error_code& ec) {
  if (!records_) return detail::try_shutdown(ssl_.get(), ec);
  // Our close_notify (close_notify() sends it once and then only finishes sending it).
  const auto sent = records_->close_notify(socket_.native_handle(), ec);
  if (sent != detail::Step::done) return sent;
  // Then the peer's close_notify (or its TCP close); its remaining data is dropped.
  unsigned char discard[256];
  for (;;) {
    std::size_t n = 0;
    const auto step = records_->read(socket_.native_handle(), discard, sizeof discard, n, ec);
    if (step == detail::Step::done) continue;
    if (step == detail::Step::failed &&
        (ec == asio::error::eof || ec == stream_truncated_error())) {
      ec = {};
      return detail::Step::done;
    }
    return step;
  }
}

void teardown(boost::beast::role_type, TlsStream& stream, error_code& ec) {
  if (stream.socket().is_open()) {  // best effort: the fd is non-blocking
    error_code ignored;
    if (stream.records_) {
      stream.records_->close_notify(stream.socket().native_handle(), ignored);
    } else if (SSL_get_fd(stream.native_handle()) >= 0) {
      SSL_shutdown(stream.native_handle());
      ERR_clear_error();
    }
  }
  error_code ignored;
  stream.socket().shutdown(TlsStream::socket_type::shutdown_both, ignored);
  stream.socket().close(ec);
}

}  // namespace edgehub::net

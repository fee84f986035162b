#include "join.hpp"

#include <netdb.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <memory>

namespace edgehub::sim {

namespace {

struct Answer {
  int status = 0;
  std::string body;
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct SslDeleter {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};

bool is_ip(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

int connect_to(const CertServiceAddress& service) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const auto port = std::to_string(service.port);
  if (const int rc = ::getaddrinfo(service.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw JoinError(0, "certificate service " + service.to_string() + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(service.timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((service.timeout.count() % 1000) * 1000);
  for (auto* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
    ::close(fd);
  }
  throw JoinError(0, "certificate service " + service.to_string() + ": cannot connect");
}

// One request on one connection (`Connection: close`), answered in full.
Answer https_get(const CertServiceAddress& service, SSL_CTX* ctx, const std::string& request,
                 const net::CertAndKey* client, bool verify_hostname) {
  Fd sock{connect_to(service)};
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(ctx));
  if (!ssl) throw JoinError(0, "SSL_new failed: " + net::drain_openssl_errors());
  SSL_set_fd(ssl.get(), sock.fd);
  if (!is_ip(service.host)) SSL_set_tlsext_host_name(ssl.get(), service.host.c_str());
  if (verify_hostname) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip(service.host)) {
      X509_VERIFY_PARAM_set1_ip_asc(param, service.host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, service.host.c_str(), service.host.size());
    }
  }
  if (client != nullptr &&
      (SSL_use_certificate(ssl.get(), client->cert.get()) != 1 ||
       SSL_use_PrivateKey(ssl.get(), client->key.get()) != 1)) {
    throw JoinError(0, "cannot use the current certificate: " + net::drain_openssl_errors());
  }
  const auto where = "certificate service " + service.to_string();
  if (SSL_connect(ssl.get()) != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    const auto detail = verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify))
                                            : net::drain_openssl_errors();
    net::drain_openssl_errors();
    throw JoinError(0, where + ": TLS handshake failed: " + detail);
  }
  if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) !=
      static_cast<int>(request.size())) {
    throw JoinError(0, where + ": cannot send the request: " + net::drain_openssl_errors());
  }
  std::string in;
  char buffer[4096];
  for (;;) {
    const int n = SSL_read(ssl.get(), buffer, sizeof buffer);
    if (n <= 0) break;
    in.append(buffer, static_cast<std::size_t>(n));
    if (in.size() > (1u << 20)) throw JoinError(0, where + ": answer too large");
  }
  net::drain_openssl_errors();
  const auto header_end = in.find("\r\n\r\n");
  if (!in.starts_with("HTTP/1.") || in.size() < 12 || header_end == std::string::npos) {
    throw JoinError(0, where + ": no HTTP answer (closed or timed out)");
  }
  Answer answer;
  answer.status = std::atoi(in.c_str() + 9);
  answer.body = in.substr(header_end + 4);
  // Content-Length, when given, bounds the body.
  std::string headers = in.substr(0, header_end);
  std::transform(headers.begin(), headers.end(), headers.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (const auto at = headers.find("\r\ncontent-length:"); at != std::string::npos) {
    const auto length = static_cast<std::size_t>(std::atoll(headers.c_str() + at + 17));
    if (answer.body.size() < length) throw JoinError(0, where + ": answer cut short");
    answer.body.resize(length);
  }
  return answer;
}

std::string request_text(const std::string& path, const std::string& host,
                         const std::string& extra_headers, const std::string& body) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: edgehub-sim\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xF]);
  }
  return out;
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.size() > 200 ? text.substr(0, 200) + "…" : text;
}

}  // namespace

std::pair<std::string, std::string> split_join_token(const std::string& token) {
  const auto dot = token.find('.');
  if (dot != 64 || std::count(token.begin(), token.end(), '.') != 3 ||
      token.find_first_not_of("0123456789abcdef") < 64) {
    throw JoinError(0, "the token is not <sha256 hex of the CA>.<JWT> (4 dot-separated parts)");
  }
  return {token.substr(0, dot), token.substr(dot + 1)};
}

std::string fetch_pinned_ca(const CertServiceAddress& service, const std::string& ca_hash) {
  const auto insecure = net::TlsContext::client({});  // edgecore skips verification here
  const auto answer = https_get(service, insecure.native_handle(),
                                request_text("/ca.crt", service.to_string(), "", ""), nullptr,
                                false);
  if (answer.status != 200) {
    throw JoinError(answer.status, "GET /ca.crt from " + service.to_string() + " answered " +
                                       std::to_string(answer.status) + ": " + trimmed(answer.body));
  }
  const auto hash = sha256_hex(answer.body);
  if (hash != ca_hash) {
    throw JoinError(0, "the CA served by " + service.to_string() + " has sha256 " + hash +
                           ", not the token's " + ca_hash + " (another hub's token?)");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(answer.body.data());
  net::X509Ptr ca(d2i_X509(nullptr, &p, static_cast<long>(answer.body.size())));
  if (!ca) throw JoinError(0, "GET /ca.crt did not return a DER certificate");
  return net::to_pem(ca.get());
}

std::string make_node_csr(const std::string& node, EVP_PKEY* key) {
  struct ReqDeleter {
    void operator()(X509_REQ* r) const noexcept { X509_REQ_free(r); }
  };
  std::unique_ptr<X509_REQ, ReqDeleter> req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  const std::string cn = "system:node:" + node;
  for (const auto& [field, value] :
       {std::pair<const char*, std::string>{"C", "CN"}, {"ST", "Zhejiang"}, {"L", "Hangzhou"},
        {"O", "system:nodes"}, {"CN", cn}}) {
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  }
  if (X509_REQ_set_pubkey(req.get(), key) != 1 || X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    throw JoinError(0, "cannot make a CSR: " + net::drain_openssl_errors());
  }
  unsigned char* out = nullptr;
  const int n = i2d_X509_REQ(req.get(), &out);
  if (n <= 0) throw JoinError(0, "cannot encode the CSR");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

net::X509Ptr request_node_cert(const CertServiceAddress& service, const net::TlsContext& tls,
                               const std::string& node, EVP_PKEY* key, const std::string& jwt,
                               const net::CertAndKey* current) {
  std::string headers = "NodeName: " + node + "\r\n";
  if (!jwt.empty()) headers += "Authorization: Bearer " + jwt + "\r\n";
  const auto answer =
      https_get(service, tls.native_handle(),
                request_text("/edge.crt", service.to_string(), headers, make_node_csr(node, key)),
                jwt.empty() ? current : nullptr, service.verify_hostname);
  if (answer.status != 200) {
    throw JoinError(answer.status, "GET /edge.crt for " + node + " answered " +
                                       std::to_string(answer.status) + ": " + trimmed(answer.body));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(answer.body.data());
  net::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(answer.body.size())));
  if (!cert) throw JoinError(0, "GET /edge.crt for " + node + " did not return a DER certificate");
  return cert;
}

}  // namespace edgehub::sim

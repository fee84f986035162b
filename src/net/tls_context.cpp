#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <edgehub/net/tls_context.hpp>
#include <fstream>
#include <sstream>

namespace edgehub::net {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};

[[noreturn]] void fail(const std::string& what) {
  const std::string detail = drain_openssl_errors();
  throw TlsError(detail.empty() ? what : what + ": " + detail);
}

void use_chain_and_key(SSL_CTX* ctx, const std::string& chain_pem, const std::string& key_pem,
                       const char* role) {
  std::unique_ptr<BIO, BioDeleter> bio(
      BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  X509* leaf = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr) fail(std::string(role) + " certificate: no PEM certificate found");
  const int ok = SSL_CTX_use_certificate(ctx, leaf);
  X509_free(leaf);
  if (ok != 1) fail(std::string(role) + " certificate rejected");
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      fail(std::string(role) + " certificate chain rejected");
    }
  }
  ERR_clear_error();  // the loop ends on a "no start line" error
  std::unique_ptr<BIO, BioDeleter> kbio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) fail(std::string(role) + " private key: no PEM key found");
  const int kok = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (kok != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    fail(std::string(role) + " private key does not match the certificate");
  }
}

void add_cas(X509_STORE* store, const std::string& pem, const char* what) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  int count = 0;
  while (X509* ca = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, ca);
    X509_free(ca);
    ++count;
  }
  ERR_clear_error();
  if (count == 0) throw TlsError(std::string(what) + ": no PEM certificate found");
}

// Verifies as OpenSSL would, then drops the verified chain from the store context: OpenSSL
// would keep a copy of it (a stack of the leaf and its CAs) with every connection for its
// whole life, and nothing here reads it (the peer's certificate stays in the session).
int verify_without_keeping_the_chain(X509_STORE_CTX* store, void*) {
  const int ok = X509_verify_cert(store);
  X509_STORE_CTX_set0_verified_chain(store, nullptr);
  return ok;
}

SSL_CTX* new_ctx(const SSL_METHOD* method) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) fail("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // Idle connections give their 2 × ~17 KiB record buffers back; partial writes stay off so
  // a write completes whole, and a retried write may come from a re-filled scratch buffer.
  // No auto-chaining: a peer gets exactly the configured chain, as from Go's crypto/tls. By
  // default OpenSSL would add every CA of the verify store it can chain to — an edge whose
  // CA is also its server CA (the usual single KubeEdge CA) would send that CA along, and
  // the hub would keep it parsed for the connection's life (~3.8 KiB per edge).
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  return ctx;
}

}  // namespace

std::string drain_openssl_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::string read_pem_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw TlsError("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TlsContext TlsContext::server(const ServerTlsOptions& options) {
  TlsContext context(new_ctx(TLS_server_method()), true);
  SSL_CTX* ctx = context.native_handle();
  // No tickets (TLS 1.2 and 1.3) and no server-side session cache: nothing per session kept.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  use_chain_and_key(ctx, options.cert_chain_pem, options.private_key_pem, "server");
  if (!options.client_ca_pem.empty()) {
    add_cas(SSL_CTX_get_cert_store(ctx), options.client_ca_pem, "client CA");
  }
  if (options.require_client_cert) {
    if (options.client_ca_pem.empty()) throw TlsError("client CA required to verify clients");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Go's server also insists on the clientAuth EKU (KUBEEDGE-WIRE §1.3).
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    SSL_CTX_set_cert_verify_callback(ctx, verify_without_keeping_the_chain, nullptr);
  }
  return context;
}

TlsContext TlsContext::client(const ClientTlsOptions& options) {
  TlsContext context(new_ctx(TLS_client_method()), false);
  SSL_CTX* ctx = context.native_handle();
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (!options.ca_pem.empty()) {
    add_cas(SSL_CTX_get_cert_store(ctx), options.ca_pem, "server CA");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!options.cert_chain_pem.empty()) {
    use_chain_and_key(ctx, options.cert_chain_pem, options.private_key_pem, "client");
  }
  return context;
}

}  // namespace edgehub::net

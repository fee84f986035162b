#pragma once
// OpenSSL SSL_CTX set up the way the edge port needs it (ARCHITECTURE §8, KUBEEDGE-WIRE §1.3):
// TLS >= 1.2, SSL_MODE_RELEASE_BUFFERS, no session tickets on the server, client certificates
// required and verified against the edge CA. Certificates and keys are PEM text, so callers
// decide where they come from (files, a Secret, minted in memory).
//
// Setup-time code: failures throw TlsError naming what was wrong (the data plane never throws).

#include <openssl/ssl.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace edgehub::net {

class TlsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Everything currently in OpenSSL's error queue as one line ("" if empty); clears the queue.
std::string drain_openssl_errors();

// Reads a whole file; throws TlsError naming the file.
std::string read_pem_file(const std::string& path);

struct ServerTlsOptions {
  std::string cert_chain_pem;  // server certificate, then intermediates
  std::string private_key_pem;
  std::string client_ca_pem;       // CA(s) that sign edge client certificates
  bool require_client_cert = true; // false only behind a proxy that forwards identity
};

struct ClientTlsOptions {
  std::string ca_pem;              // CA that signed the server's certificate; empty: no verify
  std::string cert_chain_pem;      // optional context-wide client cert (or per connection)
  std::string private_key_pem;
};

class TlsContext {
 public:
  static TlsContext server(const ServerTlsOptions& options);
  static TlsContext client(const ClientTlsOptions& options);

  SSL_CTX* native_handle() const noexcept { return ctx_.get(); }
  bool is_server() const noexcept { return server_; }

 private:
  struct Deleter {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
  };
  TlsContext(SSL_CTX* ctx, bool server) : ctx_(ctx, Deleter{}), server_(server) {}

  std::shared_ptr<SSL_CTX> ctx_;
  bool server_ = false;
};

}  // namespace edgehub::net

#pragma once
// A throwaway PKI for TLS tests: a CA, a server cert for 127.0.0.1, node client certs.
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>

namespace edgehub::net::testing {

struct TestPki {
  static CertRequest request(std::string cn, CertUsage usage) {
    CertRequest r;
    r.common_name = std::move(cn);
    r.usage = usage;
    if (usage == CertUsage::server) {
      r.dns_names = {"localhost"};
      r.ip_addresses = {"127.0.0.1"};
    }
    return r;
  }

  CertAndKey ca = mint(request("test-ca", CertUsage::ca));
  CertAndKey server = mint(request("hub", CertUsage::server), {ca.cert.get(), ca.key.get()});
  CertAndKey client = mint_node_client_cert("edge-1", {ca.cert.get(), ca.key.get()});

  TlsContext server_context(bool require_client_cert = true) const {
    return TlsContext::server({.cert_chain_pem = to_pem(server.cert.get()),
                               .private_key_pem = to_pem(server.key.get()),
                               .client_ca_pem = to_pem(ca.cert.get()),
                               .require_client_cert = require_client_cert});
  }
  TlsContext client_context(bool with_cert = true) const {
    ClientTlsOptions options;
    options.ca_pem = to_pem(ca.cert.get());
    if (with_cert) {
      options.cert_chain_pem = to_pem(client.cert.get());
      options.private_key_pem = to_pem(client.key.get());
    }
    return TlsContext::client(options);
  }
};

}  // namespace edgehub::net::testing

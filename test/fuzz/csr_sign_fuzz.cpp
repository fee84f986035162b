// CSR signing (pki::sign_node_csr) on the body of a /edge.crt request, with a test CA made
// once: the CSR is edge-chosen DER. A certificate it issues must chain to the CA and name the
// node the request was for.

#include <edgehub/pki/authority.hpp>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_ca.hpp"

namespace {

using edgehub::fuzz::authority;

struct X509Free {
  void operator()(X509* x) const noexcept { X509_free(x); }
};

void check_issued(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<X509, X509Free> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || X509_verify(cert.get(), X509_get0_pubkey(authority().cert())) != 1) std::abort();
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, cn, sizeof cn);
  if (std::string_view(cn) != "system:node:edge-1") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view csr(reinterpret_cast<const char*>(data), size);
  // An odd last byte stands for an ExtKeyUsages header of [2] (edgecore sends it).
  edgehub::pki::NodeCsrOptions options;
  if (size > 0 && (data[size - 1] & 1) != 0) options.ext_key_usages = {2};
  auto issued = edgehub::pki::sign_node_csr(authority(), csr, "edge-1", options);
  if (issued) check_issued(*issued);
  return 0;
}

#include <openssl/x509.h>

#include <edgehub/net/tls_context.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/node_identity.hpp>

#include <algorithm>

namespace edgehub::pki {

namespace {

struct ReqDeleter {
  void operator()(X509_REQ* r) const noexcept { X509_REQ_free(r); }
};

std::vector<std::string> subject_entries(X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if (data == nullptr || ASN1_STRING_get0_data(data) == nullptr) {
      out.emplace_back();
      continue;
    }
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<std::size_t>(ASN1_STRING_length(data)));
  }
  return out;
}

SignRefusal refuse(int status, std::string reason) { return {status, std::move(reason)}; }

}  // namespace

boost::system::result<std::string, SignRefusal> sign_node_csr(const CertificateAuthority& ca,
                                                             std::string_view csr_der,
                                                             const std::string& node,
                                                             const NodeCsrOptions& options) {
  if (node.empty()) return refuse(400, "no NodeName header");
  if (const auto problem = node_name_problem(node); !problem.empty()) return refuse(400, problem);
  if (csr_der.empty()) return refuse(400, "empty body: a DER certificate signing request is needed");
  const auto* p = reinterpret_cast<const unsigned char*>(csr_der.data());
  std::unique_ptr<X509_REQ, ReqDeleter> req(
      d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size())));
  if (!req) {
    net::drain_openssl_errors();
    return refuse(400, "body is not a DER certificate signing request");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    net::drain_openssl_errors();
    return refuse(400, "the CSR's signature does not verify");
  }
  if (EVP_PKEY_get_bits(pub) < (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC ? 256 : 2048)) {
    return refuse(400, "the CSR's key is too weak");
  }
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  const auto cn = subject_entries(subject, NID_commonName);
  const auto orgs = subject_entries(subject, NID_organizationName);
  const std::string want_cn = "system:node:" + node;
  if (cn.size() != 1 || cn[0] != want_cn) {
    return refuse(401, "CSR subject CN \"" + (cn.empty() ? std::string() : cn[0]) +
                           "\" is not \"" + want_cn + "\"");
  }
  if (orgs.size() != 1 || orgs[0] != "system:nodes") {
    return refuse(401, "CSR subject O must be exactly \"system:nodes\"");
  }
  for (int usage : options.ext_key_usages) {
    if (usage != 2) {
      return refuse(400, "ExtKeyUsages " + std::to_string(usage) +
                             " not allowed: edge certificates are for clientAuth (2) only");
    }
  }
  net::CertRequest request;
  request.common_name = want_cn;
  request.organizations = {"system:nodes"};
  request.usage = net::CertUsage::client;
  request.validity = std::min(options.validity, kMaxEdgeCertValidity);
  try {
    auto cert = net::issue_certificate(request, pub, ca.issuer());
    unsigned char* out = nullptr;
    const int n = i2d_X509(cert.get(), &out);
    if (n <= 0) return refuse(500, "cannot encode the signed certificate");
    std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
    OPENSSL_free(out);
    return der;
  } catch (const std::exception& e) {
    return refuse(500, std::string("signing failed: ") + e.what());
  }
}

}  // namespace edgehub::pki

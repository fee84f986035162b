#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>

namespace edgehub::net {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

[[noreturn]] void fail(const std::string& what) {
  const std::string detail = drain_openssl_errors();
  throw TlsError(detail.empty() ? what : what + ": " + detail);
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail("certificate extension " + value);
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) fail("adding certificate extension " + value);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) fail("reading a memory BIO");
  return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace

PkeyPtr generate_p256_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) fail("EC P-256 key generation");
  return key;
}

namespace {

// A random positive 127-bit serial (RFC 5280: at most 20 octets, unpredictable).
void set_random_serial(X509* cert) {
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) fail("RAND_bytes for the serial number");
  serial[0] &= 0x7F;
  serial[0] |= 0x01;  // never zero, never shortened below 16 octets by a leading zero octet
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(serial, sizeof(serial), nullptr),
                                                 BN_free);
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    fail("certificate serial number");
  }
}

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
  // OpenSSL refuses an over-long entry (a CN over 64 characters); a certificate must then not
  // be issued at all, rather than issued without the entry.
  if (value.empty()) fail(std::string("empty subject ") + field);
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    fail(std::string("subject ") + field + " \"" + value + "\" (at most 64 characters)");
  }
}

void add_usage_extensions(X509* cert, X509* issuer_cert, CertUsage usage) {
  switch (usage) {
    case CertUsage::ca:
      add_ext(cert, issuer_cert, NID_basic_constraints, "critical,CA:TRUE");
      add_ext(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
      break;
    case CertUsage::server:
      add_ext(cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
      add_ext(cert, issuer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
      add_ext(cert, issuer_cert, NID_ext_key_usage, "serverAuth");
      break;
    case CertUsage::client:
      add_ext(cert, issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
      add_ext(cert, issuer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
      add_ext(cert, issuer_cert, NID_ext_key_usage, "clientAuth");
      break;
  }
}

}  // namespace

X509Ptr issue_certificate(const CertRequest& request, EVP_PKEY* key, Issuer issuer) {
  X509Ptr cert(X509_new());
  if (!cert) fail("X509_new");
  if (X509_set_version(cert.get(), 2) != 1) fail("X509_set_version");  // v3
  set_random_serial(cert.get());
  // Backdated a little: clocks of edge and hub are rarely exact.
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                      static_cast<long>(std::chrono::seconds(request.validity).count())) ==
          nullptr) {
    fail("certificate validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& org : request.organizations) add_name_entry(name, "O", org);
  add_name_entry(name, "CN", request.common_name);
  const bool self_signed = issuer.cert == nullptr;
  if (X509_set_issuer_name(cert.get(), self_signed ? name : X509_get_subject_name(issuer.cert)) !=
      1) {
    fail("X509_set_issuer_name");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) fail("X509_set_pubkey");
  X509* issuer_cert = self_signed ? cert.get() : issuer.cert;
  add_usage_extensions(cert.get(), issuer_cert, request.usage);
  add_ext(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  if (!self_signed) add_ext(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& dns : request.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : request.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) add_ext(cert.get(), issuer_cert, NID_subject_alt_name, san);
  EVP_PKEY* signer = self_signed ? key : issuer.key;
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) fail("X509_sign");
  return cert;
}

CertAndKey mint(const CertRequest& request, Issuer issuer) {
  CertAndKey out;
  out.key = generate_p256_key();
  out.cert = issue_certificate(request, out.key.get(), issuer);
  return out;
}

CertAndKey mint_node_client_cert(const std::string& node, Issuer ca, EVP_PKEY* key) {
  CertRequest request;
  request.common_name = "system:node:" + node;
  request.organizations = {"system:nodes"};
  request.usage = CertUsage::client;
  if (key == nullptr) return mint(request, ca);
  CertAndKey out;
  if (EVP_PKEY_up_ref(key) != 1) fail("EVP_PKEY_up_ref");
  out.key.reset(key);
  out.cert = issue_certificate(request, key, ca);
  return out;
}

std::string to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("BIO_new");
  if (PEM_write_bio_X509(bio.get(), cert) != 1) fail("PEM_write_bio_X509");
  return bio_text(bio.get());
}

std::string to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) fail("BIO_new");
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("PEM_write_bio_PrivateKey");
  }
  return bio_text(bio.get());
}

X509Ptr cert_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("BIO_new_mem_buf");
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("no PEM certificate found");
  return cert;
}

PkeyPtr key_from_pem(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) fail("BIO_new_mem_buf");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) fail("no PEM private key found");
  return key;
}

std::string subject_common_name(X509* cert) {
  char buf[256] = {};
  const int n =
      X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string serial_hex(const X509* cert) {
  if (cert == nullptr) return {};
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(serial, nullptr), BN_free);
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  if (hex == nullptr) return {};
  std::string out(hex);
  OPENSSL_free(hex);
  // BN_bn2hex pads to whole octets (a leading 0 one time in 16), as `openssl x509 -serial`
  // does; one form whichever way a serial was written.
  return normalize_serial(out);
}

std::string normalize_serial(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == ':') continue;
    if (c >= 'a' && c <= 'f') c = static_cast<char>(c - 'a' + 'A');
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return {};
    if (out.empty() && c == '0') continue;  // leading zeros
    out.push_back(c);
  }
  if (out.empty() && !text.empty() && text.find_first_of("0") != std::string_view::npos) {
    return "0";
  }
  return out;
}

}  // namespace edgehub::net

#pragma once

// Throwaway certificates for TLS tests, made with the OpenSSL API (no files, no CLI).

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace edgehub::kube::testing {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> cert;
};

inline std::string to_pem(X509* x) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(bio.get(), x);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

inline std::string to_pem(EVP_PKEY* k) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// Issues a certificate for `cn`; self-signed CA when `issuer` is null.
inline KeyPair issue(const std::string& cn, const KeyPair* issuer, const std::string& san = {}) {
  static long serial = 1;
  std::shared_ptr<EVP_PKEY> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::shared_ptr<X509> x(X509_new(), X509_free);
  if (!key || !x) throw std::runtime_error("openssl allocation failed");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer ? issuer->cert.get() : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(issuer_cert));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer_cert, x.get(), nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) throw std::runtime_error("bad extension " + value);
    X509_add_ext(x.get(), ext, -1);
    X509_EXTENSION_free(ext);
  };
  if (!issuer) {
    add(NID_basic_constraints, "critical,CA:TRUE");
    add(NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add(NID_basic_constraints, "critical,CA:FALSE");
  }
  if (!san.empty()) add(NID_subject_alt_name, san);
  EVP_PKEY* signer = issuer ? issuer->key.get() : key.get();
  if (X509_sign(x.get(), signer, EVP_sha256()) == 0) throw std::runtime_error("X509_sign failed");
  return KeyPair{to_pem(x.get()), to_pem(key.get()), key, x};
}

}  // namespace edgehub::kube::testing

#include <openssl/bn.h>

#include <edgehub/pki/node_identity.hpp>
#include <memory>

namespace edgehub::pki {

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string node_name_problem(std::string_view name) {
  if (name.empty()) return "the node name is empty";
  if (name.size() > kMaxNodeNameLength) {
    return "the node name is longer than " + std::to_string(kMaxNodeNameLength) +
           " characters (CN=system:node:<name> must fit in 64)";
  }
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return "the node name is not a DNS-1123 subdomain";
      label = 0;
      continue;
    }
    if (!lower_alnum(c) && c != '-') {
      return "the node name is not a DNS-1123 subdomain (lower-case letters, digits, '-', '.')";
    }
    if (label == 0 && c == '-') return "the node name is not a DNS-1123 subdomain";
    ++label;
  }
  if (label == 0 || name.back() == '-') return "the node name is not a DNS-1123 subdomain";
  return {};
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

}  // namespace edgehub::pki

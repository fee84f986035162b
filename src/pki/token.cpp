#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <edgehub/pki/token.hpp>
#include <nlohmann/json.hpp>
#include <optional>

namespace edgehub::pki {

std::string_view to_string(TokenProblem problem) {
  switch (problem) {
    case TokenProblem::malformed: return "malformed token";
    case TokenProblem::unsupported_algorithm: return "token algorithm is not HS256";
    case TokenProblem::bad_signature: return "token signature does not verify (forged, or from another CA)";
    case TokenProblem::expired: return "token expired";
  }
  return "unknown";
}

std::string base64url_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

boost::system::result<std::string, TokenProblem> base64url_decode(std::string_view text) {
  std::string std64(text);
  for (char& c : std64) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (!std::isalnum(static_cast<unsigned char>(c))) {
      return TokenProblem::malformed;
    }
  }
  if (std64.size() % 4 == 1) return TokenProblem::malformed;
  const std::size_t padding = (4 - std64.size() % 4) % 4;
  std64.append(padding, '=');
  std::string out(std64.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(std64.data()),
                                static_cast<int>(std64.size()));
  if (n < 0) return TokenProblem::malformed;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

namespace {

std::string hmac_sha256(const std::string& key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len) ==
      nullptr) {
    return {};  // never equal to a decoded signature: verification fails closed
  }
  return std::string(reinterpret_cast<char*>(mac), len);
}

}  // namespace

std::string create_token(const CertificateAuthority& ca, std::chrono::seconds ttl,
                         WallClock::time_point now) {
  const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                       (now + ttl).time_since_epoch())
                       .count();
  const std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." +
                                    base64url_encode(R"({"exp":)" + std::to_string(exp) + "}");
  const auto key = ca.key_der();
  const auto signature = hmac_sha256(key, signing_input);
  OPENSSL_cleanse(const_cast<char*>(key.data()), key.size());
  return ca.hash_hex() + "." + signing_input + "." + base64url_encode(signature);
}

boost::system::result<std::pair<std::string, std::string>, TokenProblem> split_token(
    std::string_view token) {
  const auto dot = token.find('.');
  if (dot != 64 || std::count(token.begin(), token.end(), '.') != 3) return TokenProblem::malformed;
  return std::pair{std::string(token.substr(0, dot)), std::string(token.substr(dot + 1))};
}

namespace {

// The expiry claim as seconds since the epoch; nullopt when absent or not a number a clock
// can hold (a float out of range must not reach an integer conversion).
std::optional<std::int64_t> expiry_seconds(const nlohmann::json& payload) {
  const auto exp = payload.find("exp");
  if (exp == payload.end()) return std::nullopt;
  if (exp->is_number_integer() && !exp->is_number_unsigned()) return exp->get<std::int64_t>();
  if (exp->is_number_unsigned()) {
    const auto v = exp->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(kMaxExpirySeconds)) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (exp->is_number_float()) {
    const double v = exp->get<double>();
    if (!(v >= 0 && v <= static_cast<double>(kMaxExpirySeconds))) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  return std::nullopt;
}

}  // namespace

// Order matters: the MAC over `header.payload` is checked before any part is decoded or
// parsed, so nothing but the holder of the CA key reaches the JSON parser; the parser never
// throws and every field is read with its type checked.
boost::system::result<WallClock::time_point, TokenProblem> verify_jwt(
    const CertificateAuthority& ca, std::string_view jwt, WallClock::time_point now) {
  if (jwt.size() > kMaxJwtBytes) return TokenProblem::malformed;
  const auto first = jwt.find('.');
  const auto second = first == std::string_view::npos ? first : jwt.find('.', first + 1);
  if (second == std::string_view::npos || jwt.find('.', second + 1) != std::string_view::npos) {
    return TokenProblem::malformed;
  }
  auto signature = base64url_decode(jwt.substr(second + 1));
  if (!signature) return TokenProblem::malformed;
  const auto key = ca.key_der();
  const auto expected = hmac_sha256(key, jwt.substr(0, second));
  OPENSSL_cleanse(const_cast<char*>(key.data()), key.size());
  if (expected.empty() || signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return TokenProblem::bad_signature;
  }
  auto header = base64url_decode(jwt.substr(0, first));
  auto payload = base64url_decode(jwt.substr(first + 1, second - first - 1));
  if (!header || !payload) return TokenProblem::malformed;
  const auto h = nlohmann::json::parse(*header, nullptr, false);
  const auto p = nlohmann::json::parse(*payload, nullptr, false);
  if (!h.is_object() || !p.is_object()) return TokenProblem::malformed;
  const auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string() || alg->get_ref<const std::string&>() != "HS256") {
    return TokenProblem::unsupported_algorithm;
  }
  const auto exp = expiry_seconds(p);
  if (!exp) return TokenProblem::malformed;
  const auto expiry = WallClock::time_point(std::chrono::seconds(*exp));
  if (now >= expiry) return TokenProblem::expired;
  return expiry;
}

}  // namespace edgehub::pki

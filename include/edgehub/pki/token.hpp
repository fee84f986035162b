#pragma once
// KubeEdge join tokens (KUBEEDGE-WIRE §5.2): `<sha256 hex of the CA DER>.<JWT>`, the JWT
// signed HS256 with the CA private key DER as HMAC key, its only claim `exp`.

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <edgehub/pki/authority.hpp>
#include <string>
#include <string_view>

namespace edgehub::pki {

using WallClock = std::chrono::system_clock;

// The whole token an operator hands to `keadm join --token` / edgecore's config.
std::string create_token(const CertificateAuthority& ca, std::chrono::seconds ttl,
                         WallClock::time_point now = WallClock::now());

// Longer JWTs are refused before any work (a KubeEdge token's JWT is ~150 bytes).
inline constexpr std::size_t kMaxJwtBytes = 4096;
// Expiries past year 9999 are refused (no clock arithmetic may overflow on them).
inline constexpr std::int64_t kMaxExpirySeconds = 253402300799;

enum class TokenProblem { malformed, unsupported_algorithm, bad_signature, expired };
std::string_view to_string(TokenProblem problem);

// Checks the JWT part (what edgecore sends as `Authorization: Bearer …`): the HMAC first,
// then alg HS256 and an `exp` in the future; returns the expiry. Never throws on any input.
boost::system::result<WallClock::time_point, TokenProblem> verify_jwt(
    const CertificateAuthority& ca, std::string_view jwt, WallClock::time_point now = WallClock::now());

// Splits a whole token into its CA hash and JWT parts; malformed if it has not 4 dot parts.
boost::system::result<std::pair<std::string, std::string>, TokenProblem> split_token(
    std::string_view token);

std::string base64url_encode(std::string_view bytes);
boost::system::result<std::string, TokenProblem> base64url_decode(std::string_view text);

}  // namespace edgehub::pki

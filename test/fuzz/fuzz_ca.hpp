#pragma once
// A fixed test CA for the fuzz targets (a fixed key, so seeds signed with it stay valid: the
// join tokens of corpus/jwt_verify/ and the CSR signing target). Test material only; it signs
// nothing outside the fuzz targets. make-corpus.sh signs its JWT seeds with this key.

#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>

#include <chrono>
#include <memory>

namespace edgehub::fuzz {

inline constexpr const char* kCaKeyPem = R"(
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIBU9Tdg6wt3SNW02pHTdmJ0yU0+hcht9Qa2HycR/YAo3oAoGCCqGSM49
AwEHoUQDQgAEZr0hGJZ2ICMHp/8aMmx3bqfzdyU0vy3e8HBKBzfN7ARWMwaU+CfZ
jfnJAdj9p+JVdMYImtuaKt6NEruLqydU7Q==
-----END EC PRIVATE KEY-----
)";

inline constexpr const char* kCaCertPem = R"(
-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUVAaEYiHSbZ9aRQLw7ziSqI9uudwwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPZWRnZWh1Yi1mdXp6LWNhMCAXDTI2MTIwNzEyMTYzMloYDzIx
MjYxMTEzMTIxNjMyWjAaMRgwFgYDVQQDDA9lZGdlaHViLWZ1enotY2EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAARmvSEYlnYgIwen/xoybHdup/N3JTS/Ld7wcEoH
N83sBFYzBpT4J9mN+ckB2P2n4lV0xgia25oq3o0Su4urJ1Tto1MwUTAdBgNVHQ4E
FgQUwT9B/YyLQNa7yiWBx4EMpDtaqcgwHwYDVR0jBBgwFoAUwT9B/YyLQNa7yiWB
x4EMpDtaqcgwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBq6PE5
COUIdVvxOzmjJQwnozMzV3qbuQaR9PQczpOMmQIhAIjIoqnXn8QcSUkAtl5CfUB1
SM0f+SRjJfWjxr+EtOPB
-----END CERTIFICATE-----
)";

// The CA of the two PEMs above, made once.
inline const pki::CertificateAuthority& authority() {
  static const auto ca = std::make_unique<pki::CertificateAuthority>(
      pki::CertificateAuthority::from_pem(kCaCertPem, kCaKeyPem));
  return *ca;
}

// The targets' fixed clock, 2026-12-01T00:00:00Z: tokens made by make-corpus.sh expire after it.
inline const auto kNow = pki::WallClock::time_point(std::chrono::seconds(1796083200));

}  // namespace edgehub::fuzz

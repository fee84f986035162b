#pragma once
// A fixed test CA for the fuzz targets (a fixed key, so seeds signed with it stay valid: the
// join tokens of corpus/jwt_verify/ and the CSR signing target). Test material only; it signs
// nothing outside the fuzz targets. make-corpus.sh signs its JWT seeds with this key.

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

}  // namespace edgehub::fuzz

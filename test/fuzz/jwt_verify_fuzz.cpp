// JWT verification (pki::verify_jwt), as the certificate service runs it on the bearer token
// of a join request before anything else: a fixed CA key and a fixed clock, so the outcome
// depends on the input alone. Seeds signed with that key (corpus/jwt_verify) get past the MAC.

#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_ca.hpp"

using edgehub::fuzz::authority;
using edgehub::fuzz::kNow;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view jwt(reinterpret_cast<const char*>(data), size);
  auto checked = edgehub::pki::verify_jwt(authority(), jwt, kNow);
  if (checked && *checked <= kNow) std::abort();  // accepted although expired
  // The whole join token as an operator pastes it: <ca hash>.<jwt>.
  (void)edgehub::pki::split_token(jwt);
  return 0;
}

// The certificate service's CPU work per joining edge: checking the token's JWT and signing
// the node's CSR (what runs on the signing threads), and for comparison the edge's side.
#include <benchmark/benchmark.h>
#include <openssl/x509.h>

#include <edgehub/net/x509_mint.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>

namespace {

using namespace std::chrono_literals;

const edgehub::pki::CertificateAuthority& ca() {
  static const auto authority = edgehub::pki::CertificateAuthority::create("bench CA");
  return authority;
}

// A CSR as edgecore makes it (P-256, CN=system:node:<node>, O=system:nodes), DER.
std::string node_csr(EVP_PKEY* key) {
  X509_REQ* req = X509_REQ_new();
  X509_NAME* name = X509_REQ_get_subject_name(req);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("system:nodes"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("system:node:edge-1"), -1, -1, 0);
  X509_REQ_set_pubkey(req, key);
  X509_REQ_sign(req, key, EVP_sha256());
  unsigned char* out = nullptr;
  const int n = i2d_X509_REQ(req, &out);
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  X509_REQ_free(req);
  return der;
}

void BM_SignNodeCsr(benchmark::State& state) {
  const auto key = edgehub::net::generate_p256_key();
  const auto csr = node_csr(key.get());
  for (auto _ : state) {
    auto cert = edgehub::pki::sign_node_csr(ca(), csr, "edge-1");
    if (!cert) state.SkipWithError("signing failed");
    benchmark::DoNotOptimize(cert);
  }
}
BENCHMARK(BM_SignNodeCsr);

void BM_VerifyJoinToken(benchmark::State& state) {
  const auto token = edgehub::pki::create_token(ca(), 24h);
  const auto jwt = edgehub::pki::split_token(token)->second;
  for (auto _ : state) {
    auto expiry = edgehub::pki::verify_jwt(ca(), jwt);
    if (!expiry) state.SkipWithError("token refused");
    benchmark::DoNotOptimize(expiry);
  }
}
BENCHMARK(BM_VerifyJoinToken);

// The edge's side: a fresh P-256 key and its CSR (edgecore does this per join and rotation).
void BM_EdgeKeyAndCsr(benchmark::State& state) {
  for (auto _ : state) {
    const auto key = edgehub::net::generate_p256_key();
    benchmark::DoNotOptimize(node_csr(key.get()));
  }
}
BENCHMARK(BM_EdgeKeyAndCsr);

}  // namespace

BENCHMARK_MAIN();

#pragma once
// The PKI state replicas share through the API server, as cloudcore does with
// `kubeedge/casecret` and `kubeedge/tokensecret` (KUBEEDGE-WIRE §5.1):
//  - the CA Secret (`cadata`, `cakeydata`: certificate and key DER). The first replica creates
//    it (from the configured CA files when they exist, else with a fresh CA); a replica that
//    loses the creation race (AlreadyExists) reads the winner's. Each replica then issues its
//    own server certificate from that CA, so edges that pinned the CA trust every replica.
//  - the token Secret (`tokendata`): a current join token, replaced every refresh interval.
//    Every replica accepts any unexpired token signed with the shared CA key, so it does not
//    matter which replica wrote it; writes carry the resourceVersion, so replicas racing to
//    refresh write one token, not one each.
// All API calls run on the kube::Client's executor (the hub's API thread). No log line holds
// token or key material.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <edgehub/config/config.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/pki/authority.hpp>
#include <edgehub/pki/token.hpp>
#include <memory>
#include <string>
#include <vector>

namespace edgehub::pki {

struct SecretRef {
  std::string ns;
  std::string name;
  std::string to_string() const { return ns + "/" + name; }
  // "namespace/name"; an empty ref for "" (not configured).
  static SecretRef parse(const std::string& text);
  bool empty() const { return name.empty(); }
};

// KubeEdge's Secret data keys.
inline constexpr const char* kCaDataKey = "cadata";
inline constexpr const char* kCaKeyDataKey = "cakeydata";
inline constexpr const char* kTokenDataKey = "tokendata";

struct SharedPkiOptions {
  SecretRef ca_secret;     // empty: the CA is the one given to SharedPki (files)
  SecretRef token_secret;  // empty: no token is kept
  // A CA for a Secret that does not exist yet: these files when both exist, else a fresh CA.
  std::string ca_cert_file;
  std::string ca_key_file;
  std::chrono::milliseconds token_refresh_interval{12 * 3600'000};
  std::chrono::milliseconds token_ttl{24 * 3600'000};
  // SANs of the server certificate issued from the Secret's CA (besides localhost & co).
  std::vector<std::string> server_names;

  static SharedPkiOptions from(const config::Config& config);
};

// Reads the CA Secret, creating it when missing; throws PkiError naming the Secret.
boost::asio::awaitable<std::shared_ptr<const CertificateAuthority>> load_or_create_ca_secret(
    kube::Client& client, SecretRef ref, std::string ca_cert_file, std::string ca_key_file);
// Its second half: creates the Secret with `ca`; when another replica won the race
// (AlreadyExists), returns the CA that replica stored instead.
boost::asio::awaitable<std::shared_ptr<const CertificateAuthority>> create_or_adopt_ca_secret(
    kube::Client& client, SecretRef ref, std::shared_ptr<const CertificateAuthority> ca);

// Makes sure `ref` holds a token of this CA that is still good for `ttl - interval`; writes a
// new one (TTL `ttl`) otherwise. Returns when the token it leaves behind becomes due.
// Throws nothing: API failures come back as the error's description in `error`.
struct TokenRefresh {
  bool wrote = false;
  WallClock::time_point due;  // when this check should run again
  std::string error;   // empty on success
};
boost::asio::awaitable<TokenRefresh> refresh_token_secret(kube::Client& client, SecretRef ref,
                                                          std::shared_ptr<const CertificateAuthority> ca,
                                                          std::chrono::milliseconds interval,
                                                          std::chrono::milliseconds ttl);

class SharedPki : public std::enable_shared_from_this<SharedPki> {
 public:
  // `file_ca`: the CA from hub.certService.caCertFile/caKeyFile (may be null).
  SharedPki(std::shared_ptr<kube::Client> client, SharedPkiOptions options,
            std::shared_ptr<const CertificateAuthority> file_ca);

  // With a CA Secret: reads or creates it and issues this replica's server certificate.
  // Runs `api_io` until done, so call it before the API thread starts. Returns false when no
  // CA Secret is configured. Throws PkiError.
  bool load_ca(boost::asio::io_context& api_io);

  std::shared_ptr<const CertificateAuthority> ca() const { return ca_; }
  const std::string& server_cert_pem() const { return server_cert_pem_; }
  const std::string& server_key_pem() const { return server_key_pem_; }
  // The edge port's TLS: the issued server certificate, client certificates from the CA.
  std::shared_ptr<net::TlsContext> edge_tls() const;

  // Keeps the token Secret current (on the API thread); nothing without one or without a CA.
  void start();
  void stop();

 private:
  void schedule(std::chrono::steady_clock::duration delay);

  std::shared_ptr<kube::Client> client_;
  SharedPkiOptions options_;
  std::shared_ptr<const CertificateAuthority> ca_;
  std::string server_cert_pem_;
  std::string server_key_pem_;
  std::unique_ptr<boost::asio::steady_timer> timer_;
  bool stopped_ = false;
};

}  // namespace edgehub::pki

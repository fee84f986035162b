#include <openssl/evp.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <edgehub/config/values.hpp>
#include <edgehub/pki/shared_pki.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace edgehub::pki {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

// A Secret's data value, decoded; nullopt when absent or not base64.
std::optional<std::string> secret_value(const nlohmann::json& secret, const char* key) {
  const auto data = secret.find("data");
  if (data == secret.end() || !data->is_object()) return std::nullopt;
  const auto value = data->find(key);
  if (value == data->end() || !value->is_string()) return std::nullopt;
  return base64_decode(value->get<std::string>());
}

std::string secret_body(const SecretRef& ref, const nlohmann::json& data) {
  const nlohmann::json secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata",
       {{"name", ref.name},
        {"namespace", ref.ns},
        {"labels", {{"app.kubernetes.io/managed-by", "edgehub"}}}}},
      {"type", "Opaque"},
      {"data", data}};
  return secret.dump();
}

CertificateAuthority parse_ca_secret(const kube::Object& object, const SecretRef& ref) {
  const auto secret = object.json();
  const auto cert = secret_value(secret, kCaDataKey);
  const auto key = secret_value(secret, kCaKeyDataKey);
  if (!cert || !key) {
    throw PkiError("Secret " + ref.to_string() + " has no valid base64 " + kCaDataKey + " and " +
                   kCaKeyDataKey + " (the CA certificate and key, DER)");
  }
  try {
    return CertificateAuthority::from_der(*cert, *key);
  } catch (const PkiError& e) {
    throw PkiError("Secret " + ref.to_string() + ": " + e.what());
  }
}

CertificateAuthority initial_ca(const std::string& cert_file, const std::string& key_file) {
  if (!cert_file.empty() && !key_file.empty() && std::filesystem::exists(cert_file) &&
      std::filesystem::exists(key_file)) {
    return CertificateAuthority::load(cert_file, key_file);
  }
  return CertificateAuthority::create("edgehub edge CA", kCaValidity);
}

bool is_ip(const std::string& name) {
  boost::system::error_code ec;
  asio::ip::make_address(name, ec);
  return !ec;
}

}  // namespace

SecretRef SecretRef::parse(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return {};
  return {text.substr(0, slash), text.substr(slash + 1)};
}

SharedPkiOptions SharedPkiOptions::from(const config::Config& config) {
  const auto& cs = config.hub.cert_service;
  SharedPkiOptions o;
  o.ca_secret = SecretRef::parse(cs.ca_secret);
  o.token_secret = SecretRef::parse(cs.token_secret);
  o.ca_cert_file = cs.ca_cert_file;
  o.ca_key_file = cs.ca_key_file;
  o.token_refresh_interval = cs.token_refresh_interval;
  o.token_ttl = cs.token_ttl;
  o.server_names = cs.server_names;
  if (!config.hub.advertise_address.empty()) o.server_names.push_back(config.hub.advertise_address);
  return o;
}

asio::awaitable<std::shared_ptr<const CertificateAuthority>> load_or_create_ca_secret(
    kube::Client& client, SecretRef ref, std::string ca_cert_file, std::string ca_key_file) {
  const auto secrets = kube::resources::secrets();
  const kube::RequestOptions options;
  auto found = co_await client.get(secrets, ref.ns, ref.name, options);
  if (found) co_return std::make_shared<const CertificateAuthority>(parse_ca_secret(*found, ref));
  if (!found.error().is(kube::ErrorKind::NotFound)) {
    throw PkiError("cannot read the CA Secret " + ref.to_string() + ": " + found.error().describe());
  }
  auto ca = std::make_shared<const CertificateAuthority>(initial_ca(ca_cert_file, ca_key_file));
  const bool from_files = std::filesystem::exists(ca_cert_file);
  auto result = co_await create_or_adopt_ca_secret(client, ref, ca);
  if (result == ca) {
    spdlog::info("CA Secret {}: created it with {} (sha256 {})", ref.to_string(),
                 from_files ? "the CA of " + ca_cert_file : "a new CA", ca->hash_hex());
  }
  co_return result;
}

asio::awaitable<std::shared_ptr<const CertificateAuthority>> create_or_adopt_ca_secret(
    kube::Client& client, SecretRef ref, std::shared_ptr<const CertificateAuthority> ca) {
  const auto secrets = kube::resources::secrets();
  const kube::RequestOptions options;
  const nlohmann::json data = {{kCaDataKey, base64_encode(ca->cert_der())},
                               {kCaKeyDataKey, base64_encode(ca->key_der())}};
  auto created = co_await client.create(secrets, ref.ns, secret_body(ref, data), options);
  if (created) co_return ca;
  if (!created.error().is(kube::ErrorKind::AlreadyExists)) {
    throw PkiError("cannot create the CA Secret " + ref.to_string() + ": " +
                   created.error().describe() +
                   (created.error().is(kube::ErrorKind::NotFound) ? " (does the namespace exist?)" : ""));
  }
  // Another replica created it first: use its CA.
  auto winner = co_await client.get(secrets, ref.ns, ref.name, options);
  if (!winner) {
    throw PkiError("cannot read the CA Secret " + ref.to_string() + ": " + winner.error().describe());
  }
  spdlog::info("CA Secret {}: another replica created it first; using its CA", ref.to_string());
  co_return std::make_shared<const CertificateAuthority>(parse_ca_secret(*winner, ref));
}

asio::awaitable<TokenRefresh> refresh_token_secret(kube::Client& client, SecretRef ref,
                                                   std::shared_ptr<const CertificateAuthority> ca,
                                                   std::chrono::milliseconds interval,
                                                   std::chrono::milliseconds ttl) {
  const auto secrets = kube::resources::secrets();
  const kube::RequestOptions get_options;
  const auto now = WallClock::now();
  TokenRefresh result;
  auto found = co_await client.get(secrets, ref.ns, ref.name, get_options);
  if (!found && !found.error().is(kube::ErrorKind::NotFound)) {
    result.error = "cannot read: " + found.error().describe();
    result.due = now + 30s;
    co_return result;
  }
  std::string resource_version;
  if (found) {
    resource_version = found->meta.resource_version;
    // Kept while it has more than ttl - interval left: it was written less than an interval ago.
    if (const auto token = secret_value(found->json(), kTokenDataKey)) {
      const auto parts = split_token(*token);
      if (parts && parts->first == ca->hash_hex()) {
        if (const auto expiry = verify_jwt(*ca, parts->second, now)) {
          const auto keep_until = *expiry - (ttl - interval);
          if (now < keep_until) {
            result.due = keep_until;
            co_return result;
          }
        }
      }
    }
  }
  const auto token = create_token(*ca, std::chrono::duration_cast<std::chrono::seconds>(ttl), now);
  const auto body = secret_body(ref, {{kTokenDataKey, base64_encode(token)}});
  kube::RequestOptions write_options;
  write_options.resource_version = resource_version;
  kube::Result<kube::Object> written = kube::make_error(kube::ErrorKind::Internal, "not written");
  if (resource_version.empty()) {
    written = co_await client.create(secrets, ref.ns, body, write_options);
  } else {
    written = co_await client.update(secrets, ref.ns, ref.name, body, write_options);
  }
  if (written) {
    result.wrote = true;
    result.due = now + interval;
  } else if (written.error().is(kube::ErrorKind::Conflict) ||
             written.error().is(kube::ErrorKind::AlreadyExists)) {
    result.due = now + 1s;  // another replica wrote first; read its token next time
  } else {
    result.error = "cannot write: " + written.error().describe();
    result.due = now + 30s;
  }
  co_return result;
}

SharedPki::SharedPki(std::shared_ptr<kube::Client> client, SharedPkiOptions options,
                     std::shared_ptr<const CertificateAuthority> file_ca)
    : client_(std::move(client)), options_(std::move(options)), ca_(std::move(file_ca)) {}

bool SharedPki::load_ca(asio::io_context& api_io) {
  if (options_.ca_secret.empty()) return false;
  auto future = asio::co_spawn(api_io,
                               load_or_create_ca_secret(*client_, options_.ca_secret,
                                                        options_.ca_cert_file, options_.ca_key_file),
                               asio::use_future);
  while (future.wait_for(0s) != std::future_status::ready) api_io.run_one_for(100ms);
  ca_ = future.get();

  net::CertRequest request;
  request.common_name = "edgehub";
  request.organizations = {"edgehub"};
  request.usage = net::CertUsage::server;
  request.validity = std::chrono::hours(24 * 365);
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  for (const auto& name : options_.server_names) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  for (const auto& name : names) (is_ip(name) ? request.ip_addresses : request.dns_names).push_back(name);
  auto server = net::mint(request, ca_->issuer());
  server_cert_pem_ = net::to_pem(server.cert.get());
  server_key_pem_ = net::to_pem(server.key.get());
  std::string sans;
  for (const auto& name : names) sans += (sans.empty() ? "" : ", ") + name;
  spdlog::info("CA Secret {}: CA sha256 {}; issued this replica's server certificate for {}",
               options_.ca_secret.to_string(), ca_->hash_hex(), sans);
  return true;
}

std::shared_ptr<net::TlsContext> SharedPki::edge_tls() const {
  return std::make_shared<net::TlsContext>(net::TlsContext::server(
      {.cert_chain_pem = server_cert_pem_,
       .private_key_pem = server_key_pem_,
       .client_ca_pem = ca_->cert_pem()}));
}

void SharedPki::start() {
  if (options_.token_secret.empty() || !ca_) return;
  timer_ = std::make_unique<asio::steady_timer>(client_->executor());
  schedule(0s);
}

void SharedPki::schedule(std::chrono::steady_clock::duration delay) {
  timer_->expires_after(delay);
  timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->stopped_) return;
    const auto& o = self->options_;
    asio::co_spawn(
        self->client_->executor(),
        refresh_token_secret(*self->client_, o.token_secret, self->ca_, o.token_refresh_interval,
                             o.token_ttl),
        [self](std::exception_ptr e, TokenRefresh r) {
          if (self->stopped_) return;
          const auto& ref = self->options_.token_secret;
          if (e) {
            r.error = "unexpected failure";
            r.due = WallClock::now() + 30s;
          }
          if (!r.error.empty()) {
            spdlog::warn("token Secret {}: {}; retrying in 30s", ref.to_string(), r.error);
          } else if (r.wrote) {
            spdlog::info("token Secret {}: wrote a new join token, valid for {}", ref.to_string(),
                         config::format_duration(self->options_.token_ttl));
          }
          const auto wait = std::clamp<std::chrono::steady_clock::duration>(
              r.due - WallClock::now(), 1s, self->options_.token_refresh_interval);
          self->schedule(wait);
        });
  });
}

void SharedPki::stop() {
  stopped_ = true;
  if (timer_) timer_->cancel();
}

}  // namespace edgehub::pki

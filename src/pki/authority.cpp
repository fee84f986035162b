#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <edgehub/net/tls_context.hpp>
#include <edgehub/pki/authority.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

namespace edgehub::pki {

namespace {

std::string read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PkiError(std::string(what) + " " + path + ": cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string hex(const unsigned char* data, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xF]);
  }
  return out;
}

// Writes `text` to `path` so that no other user can ever read it and a crash leaves either the
// old file or the new one: a fresh temporary created with its final mode (O_EXCL: not a file
// someone placed there; O_NOFOLLOW: not through a link), written, flushed to disk, renamed
// over `path`, and the directory flushed so the rename survives a power loss.
void write_file(const std::string& path, const std::string& text, mode_t mode) {
  const auto tmp = path + ".tmp";
  ::unlink(tmp.c_str());  // a leftover of a crash; O_EXCL below refuses anything put back
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) throw PkiError(path + ": cannot be created: " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw PkiError(path + ": " + what + ": " + std::strerror(err));
  };
  if (::fchmod(fd, mode) != 0) fail("cannot set its mode");  // the umask narrowed it
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot be written");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("cannot be flushed");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw PkiError(path + ": cannot be closed: " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw PkiError(path + ": cannot be renamed into place: " + std::strerror(err));
  }
  const auto dir = std::filesystem::path(path).parent_path();
  const int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

bool server_cert_covers(const std::string& file, const std::vector<std::string>& names,
                        X509* ca) {
  std::ifstream in(file);
  if (!in) return false;
  const std::string pem(std::istreambuf_iterator<char>(in), {});
  try {
    auto cert = net::cert_from_pem(pem);
    EVP_PKEY* ca_key = X509_get0_pubkey(ca);
    if (X509_verify(cert.get(), ca_key) != 1) return false;  // signed by another CA
    if (X509_cmp_current_time(X509_get0_notAfter(cert.get())) <= 0) return false;
    for (const auto& name : names) {
      const bool ip = name.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
                      (name.find('.') != std::string::npos || name.find(':') != std::string::npos);
      const int ok = ip ? X509_check_ip_asc(cert.get(), name.c_str(), 0)
                        : X509_check_host(cert.get(), name.c_str(), name.size(), 0, nullptr);
      if (ok != 1) return false;
    }
    return true;
  } catch (const net::TlsError&) {
    return false;
  }
}

}  // namespace

CertificateAuthority CertificateAuthority::load(const std::string& cert_file,
                                                const std::string& key_file) {
  const auto cert_pem = read_file(cert_file, "CA certificate");
  const auto key_pem = read_file(key_file, "CA key");
  try {
    return from_pem(cert_pem, key_pem);
  } catch (const PkiError& e) {
    throw PkiError(cert_file + " / " + key_file + ": " + e.what());
  }
}

CertificateAuthority CertificateAuthority::from_pem(const std::string& cert_pem,
                                                    const std::string& key_pem) {
  try {
    auto cert = net::cert_from_pem(cert_pem);
    auto key = net::key_from_pem(key_pem);
    if (X509_check_private_key(cert.get(), key.get()) != 1) {
      net::drain_openssl_errors();
      throw PkiError("the CA key does not belong to the CA certificate");
    }
    if (X509_check_ca(cert.get()) == 0) throw PkiError("the certificate is not a CA");
    return CertificateAuthority(std::move(cert), std::move(key));
  } catch (const net::TlsError& e) {
    throw PkiError(e.what());
  }
}

CertificateAuthority CertificateAuthority::from_der(const std::string& cert_der,
                                                    const std::string& key_der) {
  const auto* c = reinterpret_cast<const unsigned char*>(cert_der.data());
  net::X509Ptr cert(d2i_X509(nullptr, &c, static_cast<long>(cert_der.size())));
  const auto* k = reinterpret_cast<const unsigned char*>(key_der.data());
  net::PkeyPtr key(d2i_AutoPrivateKey(nullptr, &k, static_cast<long>(key_der.size())));
  net::drain_openssl_errors();
  if (!cert) throw PkiError("the CA certificate is not DER");
  if (!key) throw PkiError("the CA key is not a DER private key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    net::drain_openssl_errors();
    throw PkiError("the CA key does not belong to the CA certificate");
  }
  if (X509_check_ca(cert.get()) == 0) throw PkiError("the certificate is not a CA");
  return CertificateAuthority(std::move(cert), std::move(key));
}

CertificateAuthority CertificateAuthority::create(const std::string& common_name,
                                                  std::chrono::hours validity) {
  net::CertRequest request;
  request.common_name = common_name;
  request.organizations = {"edgehub"};
  request.usage = net::CertUsage::ca;
  request.validity = validity;
  auto minted = net::mint(request);
  return CertificateAuthority(std::move(minted.cert), std::move(minted.key));
}

std::string CertificateAuthority::cert_der() const {
  unsigned char* out = nullptr;
  const int n = i2d_X509(cert_.get(), &out);
  if (n <= 0) throw PkiError("cannot encode the CA certificate");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_free(out);
  return der;
}

std::string CertificateAuthority::key_der() const {
  unsigned char* out = nullptr;
  const int n = i2d_PrivateKey(key_.get(), &out);
  if (n <= 0) throw PkiError("cannot encode the CA key");
  std::string der(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
  OPENSSL_clear_free(out, static_cast<std::size_t>(n));
  return der;
}

std::string CertificateAuthority::hash_hex() const {
  const auto der = cert_der();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(der.data()), der.size(), digest);
  return hex(digest, sizeof digest);
}

DevPkiResult init_dev_pki(const DevPkiOptions& options) {
  namespace fs = std::filesystem;
  DevPkiResult r;
  fs::create_directories(options.dir);
  r.ca_cert_file = options.dir + "/ca.crt";
  r.ca_key_file = options.dir + "/ca.key";
  r.server_cert_file = options.dir + "/server.crt";
  r.server_key_file = options.dir + "/server.key";

  std::optional<CertificateAuthority> ca;
  if (fs::exists(r.ca_cert_file) && fs::exists(r.ca_key_file)) {
    ca.emplace(CertificateAuthority::load(r.ca_cert_file, r.ca_key_file));
  } else {
    ca.emplace(CertificateAuthority::create("edgehub dev CA", kCaValidity));
    write_file(r.ca_key_file, ca->key_pem(), 0600);
    write_file(r.ca_cert_file, ca->cert_pem(), 0644);
    r.created_ca = true;
  }

  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  names.insert(names.end(), options.sans.begin(), options.sans.end());
  if (!options.force && !r.created_ca && fs::exists(r.server_key_file) &&
      server_cert_covers(r.server_cert_file, names, ca->cert())) {
    return r;
  }
  net::CertRequest request;
  request.common_name = "edgehub";
  request.organizations = {"edgehub"};
  request.usage = net::CertUsage::server;
  request.validity = std::chrono::hours(24 * 365);
  for (const auto& name : names) {
    const bool ip = name.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos &&
                    (name.find('.') != std::string::npos || name.find(':') != std::string::npos);
    (ip ? request.ip_addresses : request.dns_names).push_back(name);
  }
  auto server = net::mint(request, ca->issuer());
  write_file(r.server_key_file, net::to_pem(server.key.get()), 0600);
  write_file(r.server_cert_file, net::to_pem(server.cert.get()), 0644);
  r.issued_server_cert = true;
  return r;
}

}  // namespace edgehub::pki

// HTTPS with a bearer token: the certificate is generated here (self-signed, in memory) so the
// test needs no files from the repository.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <edgehub/devapi/server.hpp>
#include <filesystem>
#include <fstream>
#include <memory>

namespace edgehub::devapi {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace fs = std::filesystem;

// Writes a self-signed certificate for 127.0.0.1 and its key as PEM files.
void write_self_signed(const std::string& cert_path, const std::string& key_path) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  ASSERT_TRUE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("devapi-test"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  FILE* f = std::fopen(cert_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_X509(f, cert.get());
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
}

struct Result {
  int status;
  std::string body;
};

Result https_get(std::uint16_t port, const std::string& target, const std::string& token) {
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(20));
  beast::get_lowest_layer(stream).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  stream.handshake(asio::ssl::stream_base::client);
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, "127.0.0.1");
  if (!token.empty()) request.set(http::field::authorization, "Bearer " + token);
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {static_cast<int>(response.result_int()), response.body()};
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("devapi-tls-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    options_.tls_cert_file = (dir_ / "tls.crt").string();
    options_.tls_key_file = (dir_ / "tls.key").string();
    options_.bearer_token = "s3cret";
    write_self_signed(options_.tls_cert_file, options_.tls_key_file);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  ServerOptions options_;
};

TEST_F(TlsTest, ServesHttpsAndChecksTheBearerToken) {
  Server server(options_);
  server.start();
  EXPECT_EQ(server.url().rfind("https://127.0.0.1:", 0), 0U);
  const Result ok = https_get(server.port(), "/api/v1/namespaces", "s3cret");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body)["kind"], "NamespaceList");
  const Result wrong = https_get(server.port(), "/api/v1/namespaces", "wrong-token");
  EXPECT_EQ(wrong.status, 401);
  const auto status = nlohmann::json::parse(wrong.body);
  EXPECT_EQ(status["reason"], "Unauthorized");
  EXPECT_EQ(status["code"], 401);
  EXPECT_EQ(https_get(server.port(), "/api/v1/namespaces", "").status, 401);
}

TEST_F(TlsTest, KubeconfigCarriesServerAndToken) {
  Server server(options_);
  server.start();
  const std::string path = (dir_ / "kubeconfig").string();
  server.write_kubeconfig(path);
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("server: " + server.url()), std::string::npos);
  EXPECT_NE(text.find("token: s3cret"), std::string::npos);
  EXPECT_NE(text.find("insecure-skip-tls-verify: true"), std::string::npos);
}

}  // namespace
}  // namespace edgehub::devapi

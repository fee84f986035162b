// The CA and token Secrets against the embedded API server: creation, the creation race
// between replicas, reading an existing CA, keeping a current token.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <edgehub/devapi/server.hpp>
#include <edgehub/pki/shared_pki.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>

#include <fstream>

#include "api_client.hpp"

namespace edgehub::pki {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  out.resize(static_cast<std::size_t>(
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()))));
  return out;
}

std::string unbase64(const std::string& text) {
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  std::size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

class SharedPkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.start();
    client_ = test::api_client(api_, io_, "shared-pki");
  }

  template <class T>
  T run(asio::awaitable<T> task) {
    auto future = asio::co_spawn(io_, std::move(task), asio::use_future);
    io_.restart();
    io_.run();
    return future.get();
  }

  devapi::Store& store() { return api_.store(); }
  const devapi::ResourceInfo& secrets() { return devapi::resource_by_name("secrets"); }

  devapi::Server api_{devapi::ServerOptions{}};
  asio::io_context io_;
  std::shared_ptr<kube::Client> client_;
  const SecretRef ca_ref_{"kubeedge", "casecret"};
  const SecretRef token_ref_{"kubeedge", "tokensecret"};
};

TEST_F(SharedPkiTest, FirstReplicaCreatesTheCaSecretInKubeEdgeFormat) {
  auto ca = run(load_or_create_ca_secret(*client_, ca_ref_, "/nonexistent/ca.crt", "/nonexistent/ca.key"));
  const auto secret = store().get(secrets(), "kubeedge", "casecret");
  EXPECT_EQ(unbase64(secret["data"]["cadata"].get<std::string>()), ca->cert_der());
  EXPECT_EQ(unbase64(secret["data"]["cakeydata"].get<std::string>()), ca->key_der());
  // A later replica reads the same CA.
  auto again = run(load_or_create_ca_secret(*client_, ca_ref_, "", ""));
  EXPECT_EQ(again->hash_hex(), ca->hash_hex());
}

TEST_F(SharedPkiTest, TheCaFilesSeedANewSecret) {
  const auto files = CertificateAuthority::create("from files");
  const auto dir = ::testing::TempDir();
  std::ofstream(dir + "seed-ca.crt") << files.cert_pem();
  std::ofstream(dir + "seed-ca.key") << files.key_pem();
  auto ca = run(load_or_create_ca_secret(*client_, ca_ref_, dir + "seed-ca.crt", dir + "seed-ca.key"));
  EXPECT_EQ(ca->hash_hex(), files.hash_hex());
}

TEST_F(SharedPkiTest, AReplicaThatLosesTheCreationRaceUsesTheWinnersCa) {
  // The winner created the Secret after the loser read NotFound: the loser's create gets
  // AlreadyExists and it adopts the stored CA instead of its own.
  auto winner = run(load_or_create_ca_secret(*client_, ca_ref_, "", ""));
  auto loser_ca = std::make_shared<const CertificateAuthority>(CertificateAuthority::create("loser"));
  auto adopted = run(create_or_adopt_ca_secret(*client_, ca_ref_, loser_ca));
  EXPECT_EQ(adopted->hash_hex(), winner->hash_hex());
  EXPECT_NE(adopted->hash_hex(), loser_ca->hash_hex());
  // Both started at once end with one CA too.
  store().remove(secrets(), "kubeedge", "casecret");
  auto first = asio::co_spawn(io_, load_or_create_ca_secret(*client_, ca_ref_, "", ""), asio::use_future);
  auto second = asio::co_spawn(io_, load_or_create_ca_secret(*client_, ca_ref_, "", ""), asio::use_future);
  io_.restart();
  io_.run();
  EXPECT_EQ(first.get()->hash_hex(), second.get()->hash_hex());
}

TEST_F(SharedPkiTest, ABrokenCaSecretIsReportedByName) {
  store().create(secrets(), "kubeedge",
                 {{"metadata", {{"name", "casecret"}}}, {"data", {{"cadata", base64("not DER")}}}});
  try {
    run(load_or_create_ca_secret(*client_, ca_ref_, "", ""));
    FAIL() << "a Secret without a key was accepted";
  } catch (const PkiError& e) {
    EXPECT_NE(std::string(e.what()).find("kubeedge/casecret"), std::string::npos) << e.what();
  }
}

TEST_F(SharedPkiTest, TheTokenSecretHoldsACurrentTokenOfTheCa) {
  auto ca = std::make_shared<const CertificateAuthority>(CertificateAuthority::create("edge CA"));
  auto first = run(refresh_token_secret(*client_, token_ref_, ca, 12h, 24h));
  EXPECT_TRUE(first.wrote);
  EXPECT_TRUE(first.error.empty()) << first.error;
  const auto token = unbase64(store().get(secrets(), "kubeedge", "tokensecret")["data"]["tokendata"]);
  const auto parts = split_token(token);
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->first, ca->hash_hex());
  const auto expiry = verify_jwt(*ca, parts->second);
  ASSERT_TRUE(expiry);
  EXPECT_GT(*expiry, WallClock::now() + 23h);

  // Fresh: kept, and due again when it has less than ttl - interval left.
  auto second = run(refresh_token_secret(*client_, token_ref_, ca, 12h, 24h));
  EXPECT_FALSE(second.wrote);
  EXPECT_GT(second.due, WallClock::now() + 11h);
  EXPECT_EQ(unbase64(store().get(secrets(), "kubeedge", "tokensecret")["data"]["tokendata"]), token);

  // A token of another CA (the CA Secret was replaced) is replaced at once.
  auto other = std::make_shared<const CertificateAuthority>(CertificateAuthority::create("other"));
  auto third = run(refresh_token_secret(*client_, token_ref_, other, 12h, 24h));
  EXPECT_TRUE(third.wrote);
  const auto replaced = unbase64(store().get(secrets(), "kubeedge", "tokensecret")["data"]["tokendata"]);
  EXPECT_EQ(replaced.substr(0, 64), other->hash_hex());
}

TEST_F(SharedPkiTest, ATokenPastItsRefreshPointIsReplaced) {
  auto ca = std::make_shared<const CertificateAuthority>(CertificateAuthority::create("edge CA"));
  // Written by another replica 13 hours ago: 11 of 24 hours left, under ttl - interval = 12 h.
  const auto old = create_token(*ca, 24h, WallClock::now() - 13h);
  store().create(secrets(), "kubeedge",
                 {{"metadata", {{"name", "tokensecret"}}}, {"data", {{"tokendata", base64(old)}}}});
  auto result = run(refresh_token_secret(*client_, token_ref_, ca, 12h, 24h));
  EXPECT_TRUE(result.wrote);
  EXPECT_NE(unbase64(store().get(secrets(), "kubeedge", "tokensecret")["data"]["tokendata"]), old);
}

}  // namespace
}  // namespace edgehub::pki

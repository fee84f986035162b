// Joining with nothing but a token and the hub's address, end to end: the embedded API
// server, hub replicas sharing their CA and join token through Secrets (as cloudcore's
// kubeedge/casecret and kubeedge/tokensecret), and `edgehub-sim --token` fleets that
// download the CA, pin it, get their certificates signed, connect and rotate.
#include <edgehub/devapi/server.hpp>
#include <edgehub/hub/hub.hpp>
#include <edgehub/kube/config.hpp>
#include <edgehub/pki/shared_pki.hpp>
#include <edgehub/pki/token.hpp>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <thread>

#include "eventually.hpp"
#include "process.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Whole programs start here: more time than in-process tests give them.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s) {
  return test::eventually(pred, limit);
}

std::string unbase64(const std::string& text) {
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

double metric(Hub& hub, const std::string& name) {
  const std::regex line("(^|\n)" + name + " ([0-9.e+]+)");
  std::smatch m;
  const auto text = hub.metrics().expose();
  return std::regex_search(text, m, line) ? std::stod(m[2]) : -1;
}

class JoinEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "join-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    api_.start();
    api_.write_kubeconfig(dir_ + "/kubeconfig");
  }

  std::unique_ptr<Hub> make_hub(const std::string& id) {
    auto kube = kube::load_kubeconfig(dir_ + "/kubeconfig");
    EXPECT_TRUE(kube) << kube.error().describe();
    HubOptions options;
    auto& c = options.config;
    c.hub.id = id;
    c.hub.listen = {"127.0.0.1", 0};
    c.metrics.listen = {"127.0.0.1", 0};
    c.hub.io_threads = 1;
    c.hub.cert_service.listen = {"127.0.0.1", 0};
    c.hub.cert_service.ca_secret = "kubeedge/casecret";
    c.hub.cert_service.token_secret = "kubeedge/tokensecret";
    c.hub.cert_service.ca_cert_file = dir_ + "/absent-ca.crt";  // a fresh CA for the Secret
    c.hub.cert_service.ca_key_file = dir_ + "/absent-ca.key";
    c.hub.cert_service.edge_cert_days = 1;
    c.hub.advertise_address = "127.0.0.1";
    options.kube = *kube;
    options.kube_ca_pem = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";
    return std::make_unique<Hub>(std::move(options));
  }

  static void start(Hub& hub) {
    hub.start();
    ASSERT_TRUE(eventually([&] { return hub.ready(); })) << "hub never became ready";
  }

  // The join token the hubs keep in kubeedge/tokensecret.
  std::string token_from_secret() {
    std::string token;
    EXPECT_TRUE(eventually([&] {
      try {
        token = unbase64(api_.store().get(devapi::resource_by_name("secrets"), "kubeedge",
                                          "tokensecret")["data"]["tokendata"]);
        return !token.empty();
      } catch (const std::exception&) {
        return false;
      }
    })) << "no token in kubeedge/tokensecret";
    return token;
  }

  pki::CertificateAuthority ca_from_secret() {
    const auto secret = api_.store().get(devapi::resource_by_name("secrets"), "kubeedge", "casecret");
    return pki::CertificateAuthority::from_der(unbase64(secret["data"]["cadata"]),
                                               unbase64(secret["data"]["cakeydata"]));
  }

  std::vector<std::string> sim_args(Hub& hub, const std::string& token, int nodes,
                                    const std::string& prefix) {
    return {test::binary("edgehub-sim"), "--server", "127.0.0.1:" + std::to_string(hub.edge_port()),
            "--cert-service", "127.0.0.1:" + std::to_string(hub.cert_service_port()), "--token", token,
            "--nodes", std::to_string(nodes), "--prefix", prefix, "--verify-hostname",
            "--reconnect-delay", "1", "--report", dir_ + "/" + prefix + "report.json"};
  }

  // Stops a running simulator and returns its report.
  json finish(test::Child& sim, const std::string& prefix) {
    sim.signal(SIGTERM);
    const auto code = sim.wait(30s);
    EXPECT_EQ(code, 0) << slurp(dir_ + "/" + prefix + "sim.log");
    return json::parse(slurp(dir_ + "/" + prefix + "report.json"), nullptr, false);
  }

  devapi::Server api_{devapi::ServerOptions{}};
  std::string dir_;
};

TEST_F(JoinEndToEnd, AFleetJoinsWithNothingButATokenAndTheHubAddress) {
  auto hub = make_hub("hub-a");
  start(*hub);
  const auto token = token_from_secret();
  const auto ca = ca_from_secret();
  EXPECT_EQ(token.substr(0, 64), ca.hash_hex()) << "the token pins the Secret's CA";

  test::Child sim(sim_args(*hub, token, 20, "join-"), dir_ + "/join-sim.log");
  EXPECT_TRUE(eventually([&] { return hub->sessions() == 20; }))
      << hub->sessions() << " sessions; sim log:\n" << slurp(dir_ + "/join-sim.log");
  // The nodes registered through the hub.
  EXPECT_TRUE(eventually([&] {
    try {
      api_.store().get(devapi::resource_by_name("nodes"), "", "join-19");
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }));
  const auto report = finish(sim, "join-");
  EXPECT_EQ(report.value("joins", 0), 20);
  EXPECT_EQ(report.value("connect_failures", -1), 0);
}

TEST_F(JoinEndToEnd, ExpiredForgedAndForeignTokensAreRefused) {
  auto hub = make_hub("hub-a");
  start(*hub);
  const auto good = token_from_secret();
  const auto ca = ca_from_secret();
  const auto expired = pki::create_token(ca, 1h, pki::WallClock::now() - 2h);
  auto forged = good;
  forged[forged.size() - 3] = forged[forged.size() - 3] == 'A' ? 'B' : 'A';
  const auto foreign = pki::create_token(pki::CertificateAuthority::create("another hub"), 1h);

  ::testing::internal::CaptureStdout();  // the hub's log lines (spdlog writes to stdout)
  for (const auto& [token, why] : {std::pair{expired, "token expired"},
                                   std::pair{forged, "token signature does not verify"},
                                   std::pair{foreign, "not the token's"}}) {
    const auto r = test::run(sim_args(*hub, token, 1, "refused-"), 60s);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE((r.out + r.err).find(why), std::string::npos)
        << "wanted \"" << why << "\" in:\n" << r.out << r.err;
  }
  std::fflush(stdout);
  const auto log = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(log.find("refused node refused-0 from 127.0.0.1:"), std::string::npos) << log;
  for (const auto& token : {good, expired, forged}) {
    EXPECT_EQ(log.find(token.substr(65)), std::string::npos) << "token material in the log";
  }
  EXPECT_EQ(hub->sessions(), 0u);
  EXPECT_EQ(metric(*hub, "edgehub_sessions_opened_total"), 0);
}

TEST_F(JoinEndToEnd, CertificatesAreRenewedBeforeExpiryAndTheNodesReconnect) {
  auto hub = make_hub("hub-a");
  start(*hub);
  // One-day certificates, valid from an hour before signing (clock skew), so 25 h of life;
  // renewed after 4.004 % of it: about 4 s after each signing.
  auto args = sim_args(*hub, token_from_secret(), 5, "rotate-");
  args.insert(args.end(), {"--rotate-at", "0.04004"});
  test::Child sim(args, dir_ + "/rotate-sim.log");
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 5; })) << slurp(dir_ + "/rotate-sim.log");
  // Each renewal reconnects the node with its new certificate.
  EXPECT_TRUE(eventually([&] { return metric(*hub, "edgehub_sessions_opened_total") >= 15; }, 60s))
      << slurp(dir_ + "/rotate-sim.log");
  EXPECT_TRUE(eventually([&] { return hub->sessions() == 5; }));
  const auto report = finish(sim, "rotate-");
  EXPECT_GE(report.value("rotations", 0), 10);
  EXPECT_EQ(report.value("rotation_failures", -1), 0);
}

TEST_F(JoinEndToEnd, TwoReplicasSharingTheCaSecretAcceptTheSameToken) {
  auto a = make_hub("hub-a");
  auto b = make_hub("hub-b");
  // Started at once: whichever creates the CA Secret, both end with the same CA.
  std::thread start_a([&] { start(*a); });
  start(*b);
  start_a.join();
  const auto token = token_from_secret();
  test::Child on_a(sim_args(*a, token, 3, "on-a-"), dir_ + "/on-a-sim.log");
  test::Child on_b(sim_args(*b, token, 3, "on-b-"), dir_ + "/on-b-sim.log");
  EXPECT_TRUE(eventually([&] { return a->sessions() == 3 && b->sessions() == 3; }))
      << a->sessions() << " / " << b->sessions() << "\n"
      << slurp(dir_ + "/on-a-sim.log") << slurp(dir_ + "/on-b-sim.log");
  EXPECT_EQ(finish(on_a, "on-a-").value("joins", 0), 3);
  EXPECT_EQ(finish(on_b, "on-b-").value("joins", 0), 3);
}

}  // namespace
}  // namespace edgehub::hub

// `edgehub --dev` as a developer runs it: no configuration file, the built-in defaults (its
// kube.qps and kube.burst among them), and an `edgehub-sim` fleet of thousands of edges. Every
// Node must get registered and Ready, and the dev mode must listen on loopback only even when
// told otherwise. A second run gives the hub a budget its edges' Lease renewals alone exceed:
// registrations must still complete, and the hub must say which setting to raise.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "process.hpp"
#include "programs.hpp"

namespace edgehub::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Nodes the API server holds, and how many of them are Ready.
std::pair<int, int> nodes_ready(std::uint16_t api_port) {
  const json list = http_get(api_port, "/api/v1/nodes").json_body();
  if (!list.is_object() || !list["items"].is_array()) return {0, 0};
  int ready = 0;
  for (const auto& node : list["items"]) {
    for (const auto& c : node.value("status", json::object()).value("conditions", json::array())) {
      if (c.value("type", "") == "Ready" && c.value("status", "") == "True") ++ready;
    }
  }
  return {static_cast<int>(list["items"].size()), ready};
}

// The local addresses of the TCP sockets `pid` listens on, as /proc shows them (hex).
std::vector<std::string> listening_addresses(pid_t pid) {
  std::set<std::string> inodes;
  const fs::path fds = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& fd : fs::directory_iterator(fds)) {
    std::error_code ec;
    const auto target = fs::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::vector<std::string> addresses;
  for (const char* table : {"tcp", "tcp6"}) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/" + table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >>
          timeout >> inode;
      if (state == "0A" && inodes.contains(inode)) addresses.push_back(local.substr(0, local.find(':')));
    }
  }
  return addresses;
}

bool loopback_hex(const std::string& address) {
  // 127.0.0.0/8 in /proc's little-endian hex ends in 7F; ::1 is all zeros but the last byte.
  return (address.size() == 8 && address.substr(6) == "7F") ||
         address == "00000000000000000000000001000000";
}

struct DevHub {
  // `edgehub --dev` in `dir` (its certs/dev and build/dev/kubeconfig land there), with `args`.
  DevHub(const fs::path& dir, const std::vector<std::string>& args) : log(dir / "hub.log") {
    std::string command = "cd '" + dir.string() + "' && exec '" + binary("edgehub") + "' --dev";
    for (const auto& a : args) command += " '" + a + "'";
    process = std::make_unique<Child>(std::vector<std::string>{"/bin/sh", "-c", command},
                                      log.string());
    const auto admin = wait_for_log(log, R"(admin on 127\.0\.0\.1:([0-9]+))", 120s);
    admin_port = admin.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(admin));
    const auto api = wait_for_log(dir / "build/dev/kubeconfig", R"(server: http://127\.0\.0\.1:([0-9]+))");
    api_port = api.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(api));
  }
  ~DevHub() {
    process->signal(SIGTERM);
    process->wait(30s);
  }
  std::string metrics() const { return http_get(admin_port, "/metrics").body; }

  fs::path log;
  std::unique_ptr<Child> process;
  std::uint16_t admin_port = 0;
  std::uint16_t api_port = 0;
};

// The fleet, with client certificates from the dev PKI `edgehub --dev` made in `dir`.
struct Sim : SimProcess {
  Sim(const fs::path& dir, std::uint16_t hub_port, int nodes, const std::vector<std::string>& extra = {})
      : SimProcess(dir / "certs/dev", hub_port, nodes, extra, dir / "sim.log") {}
};

// Waits until `count` Nodes are Ready; the seconds it took, or -1.
double wait_all_ready(std::uint16_t api_port, int count, std::chrono::seconds limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (nodes_ready(api_port).second >= count) {
      return std::chrono::duration<double>(Clock::now() - start).count();
    }
    std::this_thread::sleep_for(1s);
  }
  return -1;
}

TEST(DevMode, ThousandsOfEdgesGetReadyWithTheBuiltInDefaultsOnLoopbackOnly) {
  constexpr int kNodes = 2000;
  const auto dir = fresh_work_dir("dev-fleet");
  const auto edge_port = free_port();
  // Every address asked for is "all addresses": --dev must keep to loopback all the same.
  DevHub hub(dir, {"--listen", "0.0.0.0:" + std::to_string(edge_port), "--metrics-listen",
                   "0.0.0.0:0", "--cert-service-listen", "0.0.0.0:0", "--dev-api-listen",
                   "0.0.0.0:0"});
  ASSERT_NE(hub.admin_port, 0) << slurp(hub.log);
  ASSERT_NE(hub.api_port, 0) << slurp(hub.log);
  const auto listening = listening_addresses(hub.process->pid());
  EXPECT_GE(listening.size(), 4u) << "edges, admin, certificate service, API server";
  for (const auto& address : listening) EXPECT_TRUE(loopback_hex(address)) << address;
  EXPECT_NE(slurp(hub.log).find("hub.listen 0.0.0.0 changed to loopback 127.0.0.1"),
            std::string::npos);
  const std::string metrics = hub.metrics();
  EXPECT_EQ(metric(metrics, "edgehub_api_budget_saturated"), 0);

  Sim sim(dir, edge_port, kNodes);
  ASSERT_NE(sim.state_port, 0) << slurp(sim.log);
  const double seconds = wait_all_ready(hub.api_port, kNodes, 240s);
  const auto [nodes, ready] = nodes_ready(hub.api_port);
  const json stats = sim.stats();
  const std::string after = hub.metrics();
  std::cout << "[ figures  ] " << kNodes << " edges: all Ready after " << seconds
            << " s; upstream round trip " << stats.value("upstream_rtt", json()).dump()
            << "; requests waiting for a slot now "
            << metric(after, "edgehub_upstream_requests_queued") << ", in the rate limiter "
            << metric(after, "edgehub_api_requests_waiting") << "\n";
  EXPECT_EQ(nodes, kNodes);
  EXPECT_EQ(ready, kNodes) << slurp(hub.log).substr(0, 20000);
  EXPECT_EQ(metric(after, "edgehub_api_budget_saturated"), 0);
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

// Leases alone need 5 times the budget (200 edges renewing every second against 40 writes/s):
// with leases served strictly first no Node was ever registered; with shares all are.
TEST(DevMode, RegistrationsCompleteWhenLeasesAloneExceedTheBudget) {
  constexpr int kNodes = 200;
  const auto dir = fresh_work_dir("dev-budget");
  std::ofstream(dir / "budget.yaml") << "kube: {qps: 40, burst: 40}\n";
  const auto edge_port = free_port();
  DevHub hub(dir, {"--config", (dir / "budget.yaml").string(), "--listen",
                   "127.0.0.1:" + std::to_string(edge_port), "--metrics-listen", "127.0.0.1:0",
                   "--cert-service-listen", "127.0.0.1:0", "--dev-api-listen", "127.0.0.1:0"});
  ASSERT_NE(hub.admin_port, 0) << slurp(hub.log);
  Sim sim(dir, edge_port, kNodes, {"--lease-renew", "1"});
  ASSERT_NE(sim.state_port, 0) << slurp(sim.log);
  double saturated = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < 240s && nodes_ready(hub.api_port).second < kNodes) {
    saturated = std::max(saturated, metric(hub.metrics(), "edgehub_api_budget_saturated"));
    std::this_thread::sleep_for(1s);
  }
  const auto [nodes, ready] = nodes_ready(hub.api_port);
  EXPECT_EQ(nodes, kNodes);
  EXPECT_EQ(ready, kNodes);
  // The hub knows its budget falls behind and says which setting to raise.
  EXPECT_TRUE(wait_for_log(hub.log, "(kube\\.qps 40 cannot keep up: .*raise kube\\.qps)", 30s) != "")
      << slurp(hub.log).substr(0, 20000);
  const std::string metrics = hub.metrics();
  EXPECT_EQ(std::max(saturated, metric(metrics, "edgehub_api_budget_saturated")), 1);
  EXPECT_GT(metric(metrics, R"(edgehub_api_oldest_waiting_seconds{class="lease"})"), 0);
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace edgehub::test

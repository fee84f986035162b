// Issue #5's end-to-end scenarios: devapi + replicas behind a real nginx + edgehub-sim, churn,
// failures, and a convergence check at the end of each (see checker.hpp). Timings are printed,
// never asserted.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "checker.hpp"
#include "cluster.hpp"
#include "workload.hpp"

namespace edgehub::e2e {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A few hundred nodes; fewer under ASan, where every process runs several times slower, so
// that the sanitizer half of `make test` stays within its time too.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kDefaultNodes = 60;
#else
constexpr int kDefaultNodes = 200;
#endif

int env_int(const char* name, int fallback) {
  const char* v = ::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class E2E : public ::testing::Test {
 protected:
  void start(ClusterOptions options) {
    options.name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    options.nodes = env_int("EDGEHUB_E2E_NODES", kDefaultNodes);
    const auto t0 = Clock::now();
    cluster_ = std::make_unique<Cluster>(options);
    std::cout << "[e2e] " << options.name << ": files in " << cluster_->dir() << std::endl;
    cluster_->start_control_plane();
    workload_ = std::make_unique<Workload>(cluster_->dir() + "/kubeconfig", cluster_->node_names());
    workload_->seed();
    timing("control plane + seed", t0);
    const auto t1 = Clock::now();
    cluster_->start_fleet();
    timing("fleet connected (" + std::to_string(options.nodes) + " nodes)", t1);
    const auto first = await_convergence(*cluster_, 120s);
    timing("initial convergence", t1);
    ASSERT_TRUE(first.ok) << "initial state never converged: " << first.last.summary();
  }

  void churn(std::chrono::milliseconds how_long) {
    workload_->start_churn(env_int("EDGEHUB_E2E_OPS", 30));
    std::this_thread::sleep_for(how_long);  // the churn's own duration, not a wait for a result
  }

  // Stops the churn; every node must converge, and ownership must be consistent.
  void finish() {
    workload_->stop_churn();
    std::cout << "[e2e] churn: " << workload_->operations() << " operations, "
              << workload_->failures() << " refused" << std::endl;
    const auto t = Clock::now();
    const auto converged = await_convergence(*cluster_, 120s);
    timing("final convergence", t);
    ASSERT_TRUE(converged.ok) << "no convergence: " << converged.last.summary();
    std::cout << "[e2e] converged: " << converged.last.objects_compared << " objects on "
              << cluster_->options().nodes << " nodes equal the API's" << std::endl;
    const auto owned = await_ownership(*cluster_, 30s);
    timing("ownership consistent", t);
    EXPECT_TRUE(owned.ok) << "ownership: " << owned.last.summary();
  }

  void timing(const std::string& what, Clock::time_point since) {
    const double s = seconds_since(since);
    timings_ += "\n  " + what + ": " + std::to_string(s).substr(0, std::to_string(s).find('.') + 2) + " s";
    std::cout << "[e2e] " << what << ": " << s << " s" << std::endl;
  }

  void TearDown() override {
    std::cout << "[e2e] timings of " << ::testing::UnitTest::GetInstance()->current_test_info()->name()
              << ":" << timings_ << std::endl;
    if (HasFailure() && cluster_) cluster_->dump_debug();
    workload_.reset();
    const std::string dir = cluster_ ? cluster_->dir() : std::string();
    cluster_.reset();
    if (!dir.empty() && !HasFailure()) std::filesystem::remove_all(dir);
    if (HasFailure() && !dir.empty()) std::cout << "[e2e] logs kept in " << dir << std::endl;
  }

  // Nodes currently held by `replica` (/debug/nodes).
  std::vector<std::string> nodes_of(const std::string& replica) {
    std::vector<std::string> nodes;
    for (const auto& [node, holder] : cluster_->sessions()) {
      if (holder == replica) nodes.push_back(node);
    }
    return nodes;
  }

  // True once every node is held by a live replica.
  bool all_held() {
    std::set<std::string> held;
    for (const auto& [node, holder] : cluster_->sessions()) held.insert(node);
    return held.size() == static_cast<std::size_t>(cluster_->options().nodes);
  }

  // One field of one node in the simulator's state.
  template <class T>
  T node_field(const std::string& node, const char* field, T fallback) {
    const json state = cluster_->fleet_state();
    for (const auto& n : state.value("nodes", json::array())) {
      if (n.value("name", "") == node) return n.value(field, fallback);
    }
    return fallback;
  }

  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Workload> workload_;
  std::string timings_;
};

// 1. Steady churn of pods, configmaps and secrets.
TEST_F(E2E, SteadyChurn) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  churn(15s);
  finish();
}

// 2. kill -9 of one replica mid-churn: its nodes reconnect through nginx to the others.
TEST_F(E2E, ReplicaKilledMidChurn) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  churn(5s);
  const auto victims = nodes_of("hub-b");
  ASSERT_FALSE(victims.empty());
  const auto killed = Clock::now();
  cluster_->kill_replica("hub-b");
  const bool reheld = eventually([&] { return all_held(); }, 120s, 200ms);
  timing("kill -9 hub-b → its " + std::to_string(victims.size()) + " nodes held by others", killed);
  EXPECT_TRUE(reheld);
  std::this_thread::sleep_for(5s);  // churn goes on after the move
  finish();
  timing("kill -9 hub-b → converged", killed);
}

// 3. Pods force-deleted (grace 0) while their node's owner is dead: the new owner must send
// the deletes on resync (the watch events went to nobody).
TEST_F(E2E, ForceDeleteWhileOwnerDead) {
  ClusterOptions options;
  options.sim_reconnect_delay = 3;  // the window in which the owner is dead
  ASSERT_NO_FATAL_FAILURE(start(options));
  churn(8s);
  workload_->stop_churn();
  const auto victims = nodes_of("hub-b");
  ASSERT_FALSE(victims.empty());
  cluster_->kill_replica("hub-b");
  const auto deleted = workload_->force_delete_pods_of(victims);
  std::cout << "[e2e] force-deleted " << deleted << " pods of " << victims.size()
            << " nodes whose owner hub-b is dead" << std::endl;
  ASSERT_GT(deleted, 0u) << "the churn created no pod on hub-b's nodes";
  churn(5s);
  finish();
}

// Staleness of every node Lease (kube-node-lease) while it runs: the worst age of renewTime.
class LeaseWatch {
 public:
  explicit LeaseWatch(const std::string& kubeconfig) : api_(kubeconfig) {
    thread_ = std::thread([this] {
      while (!stop_) {
        sample();
        std::this_thread::sleep_for(1s);
      }
    });
  }
  ~LeaseWatch() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  double worst_seconds() const { return worst_; }
  const std::string& worst_lease() const { return worst_lease_; }

 private:
  void sample() {
    const auto reply = api_.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
    if (!reply.ok() || !reply.body.contains("items")) return;
    const auto now = std::chrono::system_clock::now();
    for (const auto& lease : reply.body["items"]) {
      const std::string renew = lease.value("/spec/renewTime"_json_pointer, "");
      std::tm tm{};
      if (renew.size() < 19 || ::strptime(renew.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) continue;
      double fraction = 0;
      if (renew.size() > 20 && renew[19] == '.') fraction = std::atof(("0" + renew.substr(19, 7)).c_str());
      const double at = static_cast<double>(::timegm(&tm)) + fraction;
      const double age =
          std::chrono::duration<double>(now.time_since_epoch()).count() - at;
      if (age > worst_) {
        worst_ = age;
        worst_lease_ = lease.value("/metadata/name"_json_pointer, "");
      }
    }
  }
  Api api_;
  std::atomic<bool> stop_{false};
  std::atomic<double> worst_{0};
  std::string worst_lease_;
  std::thread thread_;
};

// 4. SIGTERM drain of one replica mid-churn: exit 0 within drain.deadline, its nodes move to
// the others, and no node's Lease goes stale (renewTime older than 40 s) meanwhile.
TEST_F(E2E, DrainMidChurn) {
  ClusterOptions options;
  options.drain_deadline = "40s";
  ASSERT_NO_FATAL_FAILURE(start(options));
  LeaseWatch leases(cluster_->dir() + "/kubeconfig");
  churn(4s);
  const auto t = Clock::now();
  const auto code = cluster_->drain_replica("hub-b", 50s);
  timing("SIGTERM hub-b → exit", t);
  ASSERT_TRUE(code.has_value()) << "hub-b still running 50 s after SIGTERM (drain.deadline 40s)";
  EXPECT_EQ(*code, 0);
  const bool reheld = eventually([&] { return all_held(); }, 120s, 200ms);
  timing("SIGTERM hub-b → every node held by the others", t);
  EXPECT_TRUE(reheld);
  std::this_thread::sleep_for(3s);
  finish();
  leases.stop();
  std::cout << "[e2e] stalest node Lease seen: " << leases.worst_seconds() << " s ("
            << leases.worst_lease() << ")" << std::endl;
  EXPECT_LT(leases.worst_seconds(), 40.0) << "Lease " << leases.worst_lease() << " went stale";
}

// 5. A fourth replica added: it takes a fair share through rebalancing (nginx already lists
// its port, as a Service lists a new pod once it is ready).
TEST_F(E2E, ScaleOutRebalances) {
  ClusterOptions options;
  options.declared_replicas = 4;
  ASSERT_NO_FATAL_FAILURE(start(options));
  churn(3s);
  const auto t = Clock::now();
  cluster_->start_replica(3);
  timing("hub-d start → ready", t);
  const double fair = cluster_->options().nodes / 4.0;
  const bool filled = eventually([&] { return nodes_of("hub-d").size() >= fair * 0.8; }, 120s, 500ms);
  timing("hub-d start → fair share (" + std::to_string(nodes_of("hub-d").size()) + " nodes)", t);
  EXPECT_TRUE(filled) << "hub-d holds " << nodes_of("hub-d").size() << " nodes, fair share "
                      << fair;
  finish();
  for (const auto& r : cluster_->replicas()) {
    std::cout << "[e2e] " << r.id << " holds " << nodes_of(r.id).size() << " nodes" << std::endl;
  }
}

// 6. The API server's watch history expires (410 for every resuming watch) and then the API
// server restarts (state kept, resourceVersions continue), both mid-churn.
TEST_F(E2E, ApiRestartAndHistoryExpiry) {
  ASSERT_NO_FATAL_FAILURE(start({}));
  churn(4s);
  cluster_->expire_api_history();
  std::this_thread::sleep_for(4s);
  const auto before = cluster_->api().get("/api/v1/namespaces/e2e/configmaps?limit=1");
  ASSERT_TRUE(before.ok());
  const auto rv_before = std::stoull(before.body["metadata"].value("resourceVersion", "0"));
  const auto t = Clock::now();
  cluster_->restart_api();
  timing("devapi restart", t);
  std::this_thread::sleep_for(4s);
  const auto after = cluster_->api().get("/api/v1/namespaces/e2e/configmaps?limit=1");
  ASSERT_TRUE(after.ok());
  EXPECT_GT(std::stoull(after.body["metadata"].value("resourceVersion", "0")), rv_before)
      << "resourceVersions must continue after a restart";
  finish();
}

// 7. A node's agent reconnects to another replica while its old TCP connection still looks
// alive to the old replica: the claim closes the old session (reason `claimed`), not a
// keepalive timeout (10 minutes here).
TEST_F(E2E, HalfOpenOldConnectionClosedByClaim) {
  ClusterOptions options;
  options.keepalive_timeout = "10m";
  ASSERT_NO_FATAL_FAILURE(start(options));
  churn(4s);
  // nginx balances by least connections: a node of the replica holding the fewest sessions
  // would come back to it every time, so take one of the replica holding the most.
  std::map<std::string, std::set<std::string>> by_replica;
  for (const auto& [n, r] : cluster_->sessions()) by_replica[r].insert(n);
  ASSERT_FALSE(by_replica.empty());
  const auto fullest = std::max_element(by_replica.begin(), by_replica.end(), [](const auto& a, const auto& b) {
    return a.second.size() < b.second.size();
  });
  const std::string node = *fullest->second.begin();
  auto holders = [&] {
    std::set<std::string> out;
    for (const auto& [n, r] : cluster_->sessions()) {
      if (n == node) out.insert(r);
    }
    return out;
  };
  const auto initial = holders();
  ASSERT_EQ(initial.size(), 1u);
  std::string old_replica = *initial.begin();
  std::string new_replica;
  double claimed_before = 0;
  const auto t = Clock::now();
  // Through nginx the new connection may land on the same replica (which then replaces its
  // own session); abandon again until it lands elsewhere.
  for (int attempt = 0; attempt < 10 && new_replica.empty(); ++attempt) {
    claimed_before = cluster_->closes(old_replica, "claimed");
    const auto connects_before = node_field(node, "connects", 0);
    ASSERT_TRUE(cluster_->abandon(node));
    const bool back = eventually(
        [&] {
          return node_field(node, "connected", false) &&
                 node_field(node, "connects", 0) > connects_before;
        },
        30s, 100ms);
    ASSERT_TRUE(back) << node << " did not reconnect after abandoning its connection";
    std::string landed = node_field(node, "replica", std::string());
    if (landed.empty()) {
      // No X-Edgehub-Replica header: tell by the sessions (the old one is still listed).
      for (const auto& r : holders()) {
        if (r != old_replica) landed = r;
      }
      if (landed.empty()) landed = old_replica;
    }
    if (landed != old_replica) {
      new_replica = landed;
    } else {
      std::cout << "[e2e] " << node << " reconnected to " << landed << " again; retrying" << std::endl;
    }
  }
  ASSERT_FALSE(new_replica.empty()) << node << " never reconnected to another replica";
  std::cout << "[e2e] " << node << ": old connection to " << old_replica
            << " abandoned (open, silent), new one to " << new_replica << std::endl;
  const bool closed = eventually([&] { return holders() == std::set<std::string>{new_replica}; },
                                 30s, 200ms);
  timing("reconnect elsewhere → old session closed", t);
  EXPECT_TRUE(closed) << node << " still held by " << old_replica
                      << " (half-open session not closed by the claim)";
  EXPECT_GT(cluster_->closes(old_replica, "claimed"), claimed_before)
      << "edgehub_session_closes_total{reason=\"claimed\"} did not grow on " << old_replica;
  workload_->touch_anchor(node);
  std::this_thread::sleep_for(2s);
  finish();
}

}  // namespace
}  // namespace edgehub::e2e

// Several hub replicas in one process against the embedded API server: NodeSync ownership
// claims, resync from the record after an owner died, drain and rebalancing hand-offs.
// (The full chaos scenarios with separate processes and nginx live in test/e2e.)
#include <edgehub/hub/membership.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <future>
#include <thread>

#include "edge.hpp"
#include "hubs.hpp"
#include "process.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Edge;
using test::eventually;
using test::metric;

class Replicas : public ::testing::Test {
 protected:
  Hub& start_hub(const std::string& id, bool rebalance = false) {
    auto options = hubs_.options(id);
    options.config.hub.advertise_address = "127.0.0.1";
    options.config.hub.io_threads = 1;
    options.config.hub.keepalive_timeout = std::chrono::milliseconds(300'000);  // only claims close
    options.config.delivery.node_sync_interval = std::chrono::milliseconds(200);
    options.config.rebalance.enabled = rebalance;
    options.config.rebalance.interval = std::chrono::milliseconds(300);
    options.config.rebalance.tolerance = 0.1;
    options.config.rebalance.sessions_per_round = 2;
    options.config.drain.deadline = std::chrono::milliseconds(8000);
    options.config.drain.sessions_per_second = 20;
    options.config.kube.fleet_qps = fleet_qps_;
    return hubs_.start(std::move(options));
  }
  // The API server holds its answers to node pod lists (a resync's) for
  // node_pods_list_delay_ms_, and counts them in node_pods_lists_.
  devapi::ServerOptions api_options() {
    devapi::ServerOptions options;
    options.response_delay = [this](std::string_view method, std::string_view target) {
      const bool node_pods = method == "GET" && target.starts_with("/api/v1/pods?") &&
                             target.find("spec.nodeName%3D") != std::string_view::npos;
      if (!node_pods) return std::chrono::milliseconds(0);
      ++node_pods_lists_;  // answered now (from the state as it is), delivered after the delay
      return std::chrono::milliseconds(node_pods_list_delay_ms_.load());
    };
    // NodeSync writes: slow (as a loaded API server's), and every Nth answered 409.
    const auto previous = options.response_delay;
    options.response_delay = [this, previous](std::string_view method, std::string_view target) {
      if (method == "PUT" && target.find("/nodesyncs/") != std::string_view::npos) {
        return std::chrono::milliseconds(nodesync_write_delay_ms_.load());
      }
      return previous(method, target);
    };
    options.inject_conflict = [this](std::string_view method, std::string_view target) {
      const int every = nodesync_conflict_every_.load();
      return every > 0 && method == "PUT" && target.find("/nodesyncs/") != std::string_view::npos &&
             ++nodesync_writes_ % every == 0;
    };
    return options;
  }

  double fleet_qps_ = 0;  // kube.fleetQps of the replicas started next

  devapi::Store& store() { return hubs_.store(); }
  std::string owner(const std::string& node) { return hubs_.owner(node); }
  json create_pod(const std::string& name, const std::string& node) {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", node},
                  {"containers", json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
    return store().create("pods", "default", pod);
  }
  // The Node object comes down with the claim's resync.
  std::unique_ptr<Edge> connect(Hub& hub, const std::string& node) {
    return hubs_.owned_edge(hub, node);
  }

  std::atomic<int> node_pods_list_delay_ms_{0};
  std::atomic<int> node_pods_lists_{0};  // node pod lists answered so far
  std::atomic<int> nodesync_write_delay_ms_{0};
  std::atomic<int> nodesync_conflict_every_{0};  // 0: no injected conflicts
  std::atomic<int> nodesync_writes_{0};
  test::InProcessHubs hubs_{"replicas", api_options()};
  const net::CertAndKey& ca_ = hubs_.ca();
};

TEST_F(Replicas, AClaimByAnotherReplicaClosesTheOldSessionAtOnce) {
  auto& a = start_hub("replica-a");
  auto& b = start_hub("replica-b");
  auto old_edge = connect(a, "edge-1");
  ASSERT_TRUE(eventually([&] { return owner("edge-1") == "replica-a"; }));
  // The agent redials through the load balancer and lands on b; its old TCP connection still
  // looks alive to a (keepalive timeout 300 s).
  auto new_edge = std::make_unique<Edge>(ca_, b.edge_port(), "edge-1");
  ASSERT_TRUE(eventually([&] { return owner("edge-1") == "replica-b"; }));
  const auto code = old_edge->wait_close(10s);
  ASSERT_TRUE(code.has_value()) << "a kept a stale session";
  EXPECT_EQ(*code, 1012);
  EXPECT_TRUE(eventually([&] {
    return metric(a, R"(edgehub_session_closes_total{reason="claimed"})") == 1;
  }));
  EXPECT_TRUE(eventually([&] { return a.sessions() == 0 && b.sessions() == 1; }));
  // Only the owner delivers: a pod for edge-1 reaches the new connection.
  create_pod("web", "edge-1");
  new_edge->next_object("insert", "default/pod/web");
  EXPECT_EQ(metric(a, R"(edgehub_downstream_changes_total{kind="pod",operation="insert"})"), 0);
}

TEST_F(Replicas, WhatWasDeletedWhileTheOwnerWasDeadIsDeletedOnReconnect) {
  auto& a = start_hub("replica-a");
  auto& b = start_hub("replica-b");
  store().create("nodes", "", {{"metadata", {{"name", "edge-1"},
                                             {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  auto edge = connect(a, "edge-1");
  create_pod("gone", "edge-1");
  create_pod("kept", "edge-1");
  edge->next_object("insert", "default/pod/gone");
  edge->next_object("insert", "default/pod/kept");
  // Both pods are in the record before their ACKs are folded in.
  ASSERT_TRUE(eventually([&] {
    const auto objects = store().get("nodesyncs.edgehub.io", "", "edge-1")["status"]["objects"];
    return objects.size() == 2 && objects[0]["ackedResourceVersion"] != "" &&
           objects[1]["ackedResourceVersion"] != "";
  }));
  // replica-a dies (stop() writes nothing more); meanwhile the pod is force-deleted.
  edge->close();
  a.stop();
  devapi::DeleteOptions force;
  force.grace_period_seconds = 0;
  store().remove(devapi::resource_by_name("pods"), "default", "gone", force);

  Edge back(ca_, b.edge_port(), "edge-1");
  back.next_object("delete", "default/pod/gone");
  // The Node comes last in a resync: by then "kept", ACKed and unchanged, was not re-sent.
  back.next_object("update", "null/node/edge-1");
  EXPECT_EQ(back.count("update", "default/pod/kept"), 0u);
  EXPECT_EQ(metric(b, "edgehub_resync_skipped_objects_total"), 1);
  ASSERT_TRUE(eventually([&] {
    const auto objects = store().get("nodesyncs.edgehub.io", "", "edge-1")["status"]["objects"];
    return objects.size() == 1 && objects[0]["name"] == "kept";
  })) << "the delete leaves the record after its ACK";
}

// A resync's pod list is older than the watch events that arrive while it is on its way: a
// pod created meanwhile must not be deleted from the edge for missing from the list, and a pod
// deleted meanwhile must not come back from it.
TEST_F(Replicas, AResyncNeverUndoesWatchEventsThatCrossedItsList) {
  auto& a = start_hub("replica-a");
  store().create("nodes", "", {{"metadata", {{"name", "edge-1"},
                                             {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  auto edge = connect(a, "edge-1");
  edge->next_object("update", "null/node/edge-1");  // the claim's resync is over
  create_pod("old", "edge-1");
  edge->next_object("insert", "default/pod/old");
  ASSERT_TRUE(eventually([&] {
    const auto objects = store().get("nodesyncs.edgehub.io", "", "edge-1")["status"]["objects"];
    return objects.size() == 1 && objects[0]["ackedResourceVersion"] != "";
  }));
  // The watch history expires: every watch restarts from now and the node is resynced; the
  // API server answers its pod list at once but the answer takes 1.5 s to arrive.
  node_pods_list_delay_ms_ = 1500;
  const int lists = node_pods_lists_;
  hubs_.api().expire_history();
  hubs_.api().drop_watchers();
  // The resync's list has been answered (the old state) and is on its way.
  ASSERT_TRUE(eventually([&] { return node_pods_lists_ > lists; }));
  create_pod("new", "edge-1");
  devapi::DeleteOptions force;
  force.grace_period_seconds = 0;
  store().remove(devapi::resource_by_name("pods"), "default", "old", force);
  // Both events reach the edge, in either order (different objects).
  const auto both = [&] {
    return edge->count("insert", "default/pod/new") == 1 &&
           edge->count("delete", "default/pod/old") == 1;
  };
  for (int i = 0; i < 20 && !both(); ++i) edge->next([](const wire::Message&) { return true; });
  ASSERT_TRUE(both());
  // The list's answer arrives 1.5 s after it was asked for; whatever the resync sends from it
  // follows at once. Read (and ACK) all that for a while.
  ASSERT_FALSE(edge->wait_close(3s).has_value());
  node_pods_list_delay_ms_ = 0;
  EXPECT_EQ(edge->count("delete", "default/pod/new"), 0u) << "the resync deleted a newer pod";
  const auto gone = std::find_if(edge->received.begin(), edge->received.end(), [](const auto& m) {
    return m.route.operation == "delete" && m.route.resource == "default/pod/old";
  });
  EXPECT_EQ(std::count_if(gone, edge->received.end(),
                          [](const auto& m) { return m.route.resource == "default/pod/old"; }),
            1)
      << "the resync brought a deleted pod back";
  ASSERT_TRUE(eventually([&] {
    const auto objects = store().get("nodesyncs.edgehub.io", "", "edge-1")["status"]["objects"];
    return objects.size() == 1 && objects[0]["name"] == "new" &&
           objects[0]["ackedResourceVersion"] != "";
  })) << store().get("nodesyncs.edgehub.io", "", "edge-1").dump();
}

TEST_F(Replicas, DrainHandsSessionsOffWithFreshNodeLeases) {
  auto& a = start_hub("replica-a");
  auto& b = start_hub("replica-b");
  std::vector<std::unique_ptr<Edge>> edges;
  for (int i = 0; i < 4; ++i) {
    const auto node = "edge-" + std::to_string(i);
    edges.push_back(connect(a, node));
    store().create("leases.coordination.k8s.io", "kube-node-lease",
                   {{"metadata", {{"name", node}, {"namespace", "kube-node-lease"}}},
                    {"spec", {{"holderIdentity", node}, {"renewTime", "2020-01-01T00:00:00.000000Z"}}}});
  }
  ASSERT_TRUE(eventually([&] {
    try {
      store().get("leases.coordination.k8s.io", "edgehub", "replica-a");
      return true;
    } catch (const std::exception&) {
      return false;
    }
  })) << "membership Lease";
  auto drained = std::async(std::launch::async, [&] { a.drain(); });
  for (auto& edge : edges) {
    const auto code = edge->wait_close(10s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 1012) << "service restart: reconnect elsewhere";
  }
  drained.get();
  for (int i = 0; i < 4; ++i) {
    const auto lease = store().get("leases.coordination.k8s.io", "kube-node-lease",
                                   "edge-" + std::to_string(i));
    EXPECT_GT(lease["spec"]["renewTime"].get<std::string>(), "2026") << "renewed before the hand-off";
  }
  EXPECT_THROW(store().get("leases.coordination.k8s.io", "edgehub", "replica-a"), std::exception)
      << "a drained replica leaves the membership";
  EXPECT_EQ(metric(a, R"(edgehub_sessions_handed_off_total{cause="drain"})"), 4);
  // The agents come back through the load balancer to b, which claims them.
  Edge back(ca_, b.edge_port(), "edge-0");
  EXPECT_TRUE(eventually([&] { return owner("edge-0") == "replica-b"; }));
}

TEST_F(Replicas, AReplicaAboveTheAverageShedsItsSurplusButNeverBelow) {
  auto& a = start_hub("replica-a", true);
  std::vector<std::unique_ptr<Edge>> on_a;
  for (int i = 0; i < 6; ++i) on_a.push_back(connect(a, "edge-" + std::to_string(i)));
  auto& b = start_hub("replica-b", true);
  // a holds 6, b 0: the average is 3, so a hands off 3 (at most 2 per round) and keeps 3.
  // Oldest first; each shed agent comes back through the load balancer, to b.
  std::vector<std::unique_ptr<Edge>> on_b;
  for (int i = 0; i < 3; ++i) {
    const auto code = on_a[i]->wait_close(10s);
    ASSERT_TRUE(code.has_value()) << "edge-" << i << " was not handed off";
    EXPECT_EQ(*code, 1012);
    on_b.push_back(connect(b, "edge-" + std::to_string(i)));
  }
  for (int i = 3; i < 6; ++i) {
    EXPECT_FALSE(on_a[i]->wait_close(1500ms).has_value()) << "a went below the average";
  }
  EXPECT_EQ(a.sessions(), 3u);
  EXPECT_EQ(metric(a, R"(edgehub_sessions_handed_off_total{cause="rebalance"})"), 3);
  EXPECT_EQ(metric(b, R"(edgehub_sessions_handed_off_total{cause="rebalance"})"), 0);
}

// Issue 17: an agent shed by rebalancing comes back to the replica that shed it (the load
// balancer's choice), again and again, while NodeSync writes are slow and some are answered
// 409 — the old session's release flush, its claim and the new claim cross in every order.
// Every return must own its node again: a pod created afterwards reaches every node, and
// neither the not-owning check nor the delivery audit has anything to report.
TEST_F(Replicas, AgentsShedAndBackAtTheSameReplicaGetEveryPod) {
  nodesync_write_delay_ms_ = 150;
  nodesync_conflict_every_ = 4;
  auto& a = start_hub("replica-a", true);
  constexpr int kNodes = 6;
  std::vector<std::unique_ptr<Edge>> edges;
  for (int i = 0; i < kNodes; ++i) edges.push_back(connect(a, "edge-" + std::to_string(i)));
  auto& b = start_hub("replica-b");  // empty and ready: a is above the average and sheds
  int returns = 0;
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (returns < 3 * kNodes && std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < kNodes; ++i) {
      if (!edges[i]->wait_close(20ms)) continue;
      // Back to the same replica at once; the next one a little later (the agent's delay).
      if (returns % 2 == 1) std::this_thread::sleep_for(100ms);
      edges[i] = std::make_unique<Edge>(ca_, a.edge_port(), "edge-" + std::to_string(i));
      ++returns;
    }
  }
  ASSERT_GE(returns, kNodes) << "a did not shed its surplus";
  b.drain();  // its Lease goes: a, alone, stops shedding
  nodesync_write_delay_ms_ = 0;
  for (int i = 0; i < kNodes; ++i) {
    if (edges[i]->wait_close(300ms)) {
      edges[i] = std::make_unique<Edge>(ca_, a.edge_port(), "edge-" + std::to_string(i));
    }
  }
  for (int i = 0; i < kNodes; ++i) create_pod("p-" + std::to_string(i), "edge-" + std::to_string(i));
  for (int i = 0; i < kNodes; ++i) {
    try {
      edges[i]->inserted_or_resynced("default/pod/p-" + std::to_string(i));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "edge-" << i << " never received its pod: " << e.what() << "; sessions on a "
                    << a.sessions() << ", owner " << owner("edge-" + std::to_string(i));
    }
  }
  for (int i = 0; i < kNodes; ++i) {
    const auto name = "edge-" + std::to_string(i);
    std::cout << "[replicas] " << name << " record: "
              << store().get("nodesyncs.edgehub.io", "", name)["status"].dump() << std::endl;
  }
  std::cout << "[replicas] dropped events "
            << metric(a, "edgehub_downstream_dropped_events_total") << ", pod inserts queued "
            << metric(a, R"(edgehub_downstream_changes_total{kind="pod",operation="insert"})")
            << ", claims " << metric(a, "edgehub_nodesync_claims_total") << ", lost "
            << metric(a, "edgehub_nodesync_lost_total") << std::endl;
  EXPECT_EQ(metric(a, "edgehub_sessions_not_owning_total"), 0);
  EXPECT_EQ(metric(a, "edgehub_delivery_repairs_total"), 0);
  std::cout << "[replicas] " << returns << " returns to the shedding replica, "
            << metric(a, "edgehub_nodesync_conflicts_total") << " NodeSync conflicts" << std::endl;
}

// A resync leaves the objects that watch events touched while its list was on its way to
// those events — but only to events that reached its own session. Here the pod's insert
// reaches a session that never ACKs it and is replaced while its resync still waits for its
// list: the new session's resync, running beside it, must send the pod all the same (it used
// to share the node's touched set with the old resync and skip the pod until the stall check).
TEST_F(Replicas, APodTheReplacedSessionGotIsResentByTheNewSessionsResync) {
  auto& a = start_hub("replica-a");
  node_pods_list_delay_ms_ = 3000;  // the first session's resync stays open meanwhile
  auto old_edge = std::make_unique<Edge>(ca_, a.edge_port(), "edge-1");
  old_edge->ack = false;
  ASSERT_TRUE(eventually([&] { return owner("edge-1") == "replica-a" && node_pods_lists_ >= 1; }));
  create_pod("web", "edge-1");
  old_edge->next_object("insert", "default/pod/web");
  auto new_edge = std::make_unique<Edge>(ca_, a.edge_port(), "edge-1");
  EXPECT_TRUE(old_edge->wait_close(10s).has_value()) << "the old session was not replaced";
  EXPECT_NO_THROW(new_edge->inserted_or_resynced("default/pod/web"))
      << "the new session never received the pod its predecessor did not ACK";
  EXPECT_EQ(metric(a, "edgehub_nodesync_stall_resyncs_total"), 0);
}

TEST_F(Replicas, ADeletedNodeLosesItsSessionAndItsRecord) {
  auto& a = start_hub("replica-a");
  store().create("nodes", "",
                 {{"metadata", {{"name", "edge-1"}, {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  auto edge = connect(a, "edge-1");
  store().remove(devapi::resource_by_name("nodes"), "", "edge-1");
  EXPECT_TRUE(edge->wait_close(10s).has_value()) << "cloudcore closes a deleted node's session";
  EXPECT_TRUE(eventually([&] { return owner("edge-1").empty(); })) << "record removed";
}

// kube.fleetQps: the replicas share one budget, each its edges' renewals (an edge every 10 s)
// plus half of the rest; a replica that drains gives its part back.
TEST_F(Replicas, TheFleetBudgetIsSharedByTheLiveReplicas) {
  fleet_qps_ = 100;
  auto& a = start_hub("replica-a");
  std::vector<std::unique_ptr<Edge>> edges;
  for (int i = 0; i < 4; ++i) edges.push_back(connect(a, "edge-" + std::to_string(i)));
  auto& b = start_hub("replica-b");
  const double renewals = 0.4;  // a's four edges
  const double a_share = renewals + (100 - renewals) / 2;
  const double b_share = (100 - renewals) / 2;
  EXPECT_TRUE(eventually([&] {
    return std::abs(metric(a, "edgehub_api_qps") - a_share) < 1e-6 &&
           std::abs(metric(b, "edgehub_api_qps") - b_share) < 1e-6;
  })) << metric(a, "edgehub_api_qps") << " " << metric(b, "edgehub_api_qps");
  b.drain();  // its membership Lease is deleted: a is alone
  EXPECT_TRUE(eventually([&] { return std::abs(metric(a, "edgehub_api_qps") - 100) < 1e-6; }))
      << metric(a, "edgehub_api_qps");
}

TEST_F(Replicas, StatusPrintsTheFleetFromTheMembershipLeases) {
  auto& a = start_hub("replica-a");
  auto& b = start_hub("replica-b");
  auto a_edge = connect(a, "edge-1");
  const std::vector<std::string> argv = {test::binary("edgehub"), "status", "--kubeconfig",
                                         hubs_.kubeconfig(), "-n",
                                         "edgehub"};
  test::Output out;
  ASSERT_TRUE(eventually([&] {
    out = test::run(argv);
    return out.exit_code == 0 && out.out.find("2 replicas live of 2, 1 edge connections") !=
                                     std::string::npos;
  })) << out.out << out.err;
  EXPECT_NE(out.out.find("replica-a"), std::string::npos);
  EXPECT_NE(out.out.find("replica-b"), std::string::npos);
  EXPECT_NE(out.out.find("127.0.0.1"), std::string::npos);
  b.drain();  // leaves the membership
  out = test::run(argv);
  EXPECT_EQ(out.exit_code, 0) << out.out << out.err;
  EXPECT_NE(out.out.find("1 replicas live of 1"), std::string::npos) << out.out;
  const auto bad = test::run({test::binary("edgehub"), "status", "--kubeconfig", "/nonexistent"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("edgehub status:"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace edgehub::hub

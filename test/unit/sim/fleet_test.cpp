// The simulator against the stand-in hub on loopback (port 0, minted PKI). Synchronisation is
// by bounded polling of the hub's and the fleet's own observations, never by sleeping.
#include <gtest/gtest.h>

#include <edgehub/sim/fake_hub.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/wire/builders.hpp>
#include <fstream>
#include <functional>
#include <thread>

#include "net/test_pki.hpp"

namespace edgehub::sim {
namespace {

using namespace std::chrono_literals;

// Polls `done` until it holds or a generous deadline passes (a hang becomes a failure).
bool eventually(const std::function<bool()>& done, std::chrono::seconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return done();
}

class FleetTest : public ::testing::Test {
 protected:
  net::testing::TestPki pki;
  std::unique_ptr<FakeHub> hub;
  std::unique_ptr<Fleet> fleet;

  void start(int nodes = 1, const std::function<void(SimOptions&)>& tweak = {},
             FakeHubOptions hub_options = {}, bool tls = true) {
    hub = std::make_unique<FakeHub>(hub_options,
                                    tls ? std::optional(pki.server_context()) : std::nullopt);
    hub->start();
    SimOptions o;
    o.host = "127.0.0.1";
    o.port = hub->port();
    o.nodes = nodes;
    o.insecure = !tls;
    o.server_ca_pem = net::to_pem(pki.ca.cert.get());
    o.verify_hostname = true;
    o.client_ca_cert_pem = net::to_pem(pki.ca.cert.get());
    o.client_ca_key_pem = net::to_pem(pki.ca.key.get());
    o.reconnect_delay = 20ms;
    o.reconnect_max = 100ms;
    if (tweak) tweak(o);
    fleet = std::make_unique<Fleet>(o);
    fleet->start();
  }

  void TearDown() override {
    if (fleet) fleet->stop();
    if (hub) hub->stop();
  }

  std::vector<wire::Message> from(const std::string& node) { return hub->received_from(node); }

  // The first message from `node` matching `pred`, waiting for it.
  std::optional<wire::Message> wait_for(const std::string& node,
                                        const std::function<bool(const wire::Message&)>& pred) {
    std::optional<wire::Message> found;
    eventually([&] {
      for (const auto& m : from(node)) {
        if (pred(m)) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::optional<wire::Message> ack_of(const std::string& node, const std::string& msg_id) {
    return wait_for(node, [&](const wire::Message& m) {
      return m.route.operation == "response" && m.header.parent_msg_id == msg_id;
    });
  }
};

wire::Message message(std::string operation, std::string resource, nlohmann::json content,
                       std::string rv) {
  wire::Message m;
  m.header.msg_id = wire::new_message_id();
  m.header.timestamp = wire::now_millis();
  m.header.resource_version = std::move(rv);
  m.route.source = "edgecontroller";
  m.route.group = "resource";
  m.route.operation = std::move(operation);
  m.route.resource = std::move(resource);
  m.set_content(content);
  return m;
}

nlohmann::json pod(const std::string& name, const std::string& uid, const std::string& rv,
                   nlohmann::json spec = nlohmann::json::object()) {
  return {{"kind", "Pod"},
          {"apiVersion", "v1"},
          {"metadata",
           {{"name", name}, {"namespace", "default"}, {"uid", uid}, {"resourceVersion", rv}}},
          {"spec", spec}};
}

TEST_F(FleetTest, SendsEdgecoreFramesInOrderAfterConnecting) {
  start();
  ASSERT_TRUE(eventually([&] { return from("edge-0").size() >= 4; }));
  const auto got = from("edge-0");
  const auto& keepalive = got[0];
  EXPECT_EQ(keepalive.route.source, "websocket");
  EXPECT_EQ(keepalive.route.group, "resource");
  EXPECT_EQ(keepalive.route.operation, "keepalive");
  EXPECT_EQ(keepalive.route.resource, "node");
  EXPECT_EQ(keepalive.content_string(), "ping");
  EXPECT_TRUE(keepalive.header.parent_msg_id.empty());
  EXPECT_GT(keepalive.header.timestamp, 0);

  const auto& membership = got[1];
  EXPECT_EQ(membership.route.source, "twin");
  EXPECT_EQ(membership.route.operation, "get");
  EXPECT_EQ(membership.route.resource, "membership/detail");
  const auto event = nlohmann::json::parse(membership.content_string().value_or("{}"));
  EXPECT_EQ(event["event_type"], "group_membership_event");
  EXPECT_EQ(event["group_id"], "edge-0");

  EXPECT_EQ(got[2].route.source, "edged");
  EXPECT_EQ(got[2].route.group, "meta");
  EXPECT_EQ(got[2].route.operation, "query");
  EXPECT_EQ(got[2].route.resource, "kube-node-lease/lease/edge-0");
  EXPECT_EQ(got[2].content, "null");

  EXPECT_EQ(got[3].route.operation, "insert");
  EXPECT_EQ(got[3].route.resource, "null/node/edge-0");
  const auto node = got[3].content_json();
  EXPECT_EQ(node["metadata"]["name"], "edge-0");
  EXPECT_TRUE(node["metadata"]["labels"].contains("node-role.kubernetes.io/edge"));

  // Upgrade request: edgecore's header set, names and order (KUBEEDGE-WIRE §1.2).
  const auto headers = hub->upgrade_headers("edge-0");
  ASSERT_EQ(headers.size(), 1u);
  std::vector<std::string> names;
  for (const auto& [name, value] : headers[0]) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"Host", "User-Agent", "Connection", "Connectionuse",
                                             "Node_id", "Project_id", "Sec-WebSocket-Key",
                                             "Sec-WebSocket-Version", "Upgrade"}));
  auto value = [&](const std::string& name) {
    for (const auto& [n, v] : headers[0]) {
      if (n == name) return v;
    }
    return std::string();
  };
  EXPECT_EQ(value("Host"), "127.0.0.1:" + std::to_string(hub->port()));
  EXPECT_EQ(value("User-Agent"), "Go-http-client/1.1");
  EXPECT_EQ(value("Connection"), "Upgrade");
  EXPECT_EQ(value("Connectionuse"), "msg");
  EXPECT_EQ(value("Node_id"), "edge-0");
  EXPECT_EQ(value("Project_id"), "e632aba927ea4ac2b575ec1603d56f10");
  EXPECT_EQ(value("Sec-WebSocket-Version"), "13");
  EXPECT_EQ(value("Upgrade"), "websocket");
  EXPECT_EQ(hub->client_common_names(), std::vector<std::string>{"system:node:edge-0"});
}

TEST_F(FleetTest, RegistersRenewsLeaseAndReportsReady) {
  start(1, [](SimOptions& o) { o.lease_renew = 50ms; });
  const auto patch = wait_for("edge-0", [](const wire::Message& m) {
    return m.route.resource == "null/nodepatch/edge-0";
  });
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->route.operation, "patch");
  const auto text = patch->content_string();
  ASSERT_TRUE(text) << "nodepatch content must be a JSON string";
  const auto body = nlohmann::json::parse(*text);
  EXPECT_EQ(body["status"]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(body["status"]["conditions"][0]["status"], "True");
  // 404 on the query → insert, then updates carrying the returned resourceVersion.
  const auto insert = wait_for("edge-0", [](const wire::Message& m) {
    return m.route.resource == "kube-node-lease/lease/edge-0" && m.route.operation == "insert";
  });
  ASSERT_TRUE(insert);
  const auto update = wait_for("edge-0", [](const wire::Message& m) {
    return m.route.resource == "kube-node-lease/lease/edge-0" && m.route.operation == "update";
  });
  ASSERT_TRUE(update);
  const auto lease = update->content_json();
  EXPECT_FALSE(lease["metadata"]["resourceVersion"].get<std::string>().empty());
  EXPECT_EQ(lease["spec"]["holderIdentity"], "edge-0");
  // The node insert response and the pushed node update are ACKed (§11.2, §11.4).
  ASSERT_TRUE(eventually([&] {
    int acks = 0;
    for (const auto& m : from("edge-0")) {
      acks += m.route.operation == "response" && m.route.resource == "null/node/edge-0";
    }
    return acks >= 2;
  }));
  const auto objects = fleet->objects_of("edge-0");
  ASSERT_FALSE(objects.empty());
  EXPECT_EQ(objects[0].kind, "Node");
}

// As kubelet's lease controller: a renewal answered 409 (the hub renewed the Lease when it
// handed the session off) reads the Lease again and is retried in the same round, not the
// next ones — two lost rounds took such a node's Lease past the 40 s grace period.
TEST_F(FleetTest, AConflictingRenewalIsRetriedAtOnceWithTheNewVersion) {
  FakeHubOptions hub_options;
  hub_options.conflicting_lease_updates = 1;
  start(1, [](SimOptions& o) { o.lease_renew = 2s; }, hub_options);
  std::vector<wire::Message> lease;
  ASSERT_TRUE(eventually([&] {
    lease.clear();
    for (auto& m : from("edge-0")) {
      // Its requests (the hub's replies to them are ACKed: operation "response").
      if (m.route.resource == "kube-node-lease/lease/edge-0" && m.route.operation != "response") {
        lease.push_back(m);
      }
    }
    return lease.size() >= 5;
  }));
  // query (404), insert, update (409), query, update
  EXPECT_EQ(lease[0].route.operation, "query");
  EXPECT_EQ(lease[1].route.operation, "insert");
  EXPECT_EQ(lease[2].route.operation, "update");
  EXPECT_EQ(lease[3].route.operation, "query");
  EXPECT_EQ(lease[4].route.operation, "update");
  EXPECT_NE(lease[4].content_json()["metadata"]["resourceVersion"],
            lease[2].content_json()["metadata"]["resourceVersion"]);
  // In the same round: before the next renewal is due (2 s later).
  EXPECT_LT(lease[4].header.timestamp - lease[2].header.timestamp, 1000);
}

TEST_F(FleetTest, NodeAlreadyExistsStillReportsStatus) {
  FakeHubOptions ho;
  ho.node_exists = true;
  start(1, {}, ho);
  EXPECT_TRUE(wait_for("edge-0", [](const wire::Message& m) {
    return m.route.resource == "null/nodepatch/edge-0";
  }));
}

// Every cloud message of the captures that the real edge ACKed is ACKed the same way: equal
// after blanking the fields that are random by nature (msg_id, timestamp).
TEST_F(FleetTest, AcksMatchCapturedEdgecoreAcks) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1; }));
  int compared = 0;
  for (const char* file : {"pod.jsonl", "device.jsonl", "node-update.jsonl"}) {
    std::ifstream in(std::string(EDGEHUB_TEST_DATA) + "/kubeedge-captures/" + file);
    ASSERT_TRUE(in) << file;
    std::vector<std::pair<std::string, wire::Message>> lines;
    for (std::string line; std::getline(in, line);) {
      const auto j = nlohmann::json::parse(line);
      if (j["opcode"] != "text") continue;
      auto m = wire::decode(j["payload"].get<std::string>());
      ASSERT_TRUE(m) << file;
      lines.emplace_back(j["dir"].get<std::string>(), *m);
    }
    for (const auto& [dir, down] : lines) {
      if (dir != "down" || down.route.operation == "response") continue;
      const wire::Message* captured = nullptr;
      for (const auto& [d, up] : lines) {
        if (d == "up" && up.header.parent_msg_id == down.header.msg_id) captured = &up;
      }
      if (captured == nullptr) continue;  // membership: not ACKed by edgecore either
      ASSERT_TRUE(hub->send("edge-0", down));
      auto ours = ack_of("edge-0", down.header.msg_id);
      ASSERT_TRUE(ours) << file << ": no ACK for " << down.route.operation << " "
                        << down.route.resource;
      wire::Message expected = *captured;
      for (auto* m : {&expected, &*ours}) {
        m->header.msg_id = "x";
        m->header.timestamp = 1;
      }
      EXPECT_EQ(wire::encode(*ours), wire::encode(expected)) << file;
      ++compared;
    }
  }
  EXPECT_GE(compared, 10);
}

TEST_F(FleetTest, TracksObjectsAcrossInsertUpdateDelete) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1; }));
  hub->send("edge-0", message("insert", "default/pod/p1", pod("p1", "u1", "10"), "10"));
  hub->send("edge-0", message("update", "default/pod/p1", pod("p1", "u1", "11"), "11"));
  hub->send("edge-0", message("insert", "default/configmap/c1",
                              {{"kind", "ConfigMap"},
                               {"metadata", {{"name", "c1"}, {"namespace", "default"},
                                             {"uid", "cu"}, {"resourceVersion", "12"}}}},
                              "12"));
  const auto del = message("delete", "default/pod/p1", pod("p1", "u1", "13"), "13");
  hub->send("edge-0", del);
  ASSERT_TRUE(ack_of("edge-0", del.header.msg_id));
  const auto objects = fleet->objects_of("edge-0");
  auto find = [&](const std::string& kind, const std::string& name) -> const ObjectRecord* {
    for (const auto& o : objects) {
      if (o.kind == kind && o.name == name) return &o;
    }
    return nullptr;
  };
  const auto* p = find("Pod", "p1");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->deleted);
  EXPECT_EQ(p->resource_version, "13");
  EXPECT_EQ(p->uid, "u1");
  EXPECT_EQ(p->ns, "default");
  const auto* c = find("ConfigMap", "c1");
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(c->deleted);
  EXPECT_EQ(c->resource_version, "12");
  // The same through the JSON state dump.
  const auto state = fleet->state_json();
  ASSERT_EQ(state["nodes"].size(), 1u);
  EXPECT_EQ(state["nodes"][0]["name"], "edge-0");
  EXPECT_EQ(state["nodes"][0]["connected"], true);
  bool seen = false;
  for (const auto& o : state["nodes"][0]["objects"]) {
    if (o["kind"] == "Pod") {
      seen = true;
      EXPECT_EQ(o["deleted"], true);
      EXPECT_EQ(o["resourceVersion"], "13");
    }
  }
  EXPECT_TRUE(seen);
}

TEST_F(FleetTest, NewPodGetsStatusPatchAndReferencedConfigQueried) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1; }));
  hub->put_object("default/secret/s1",
                  nlohmann::json{{"kind", "Secret"},
                                 {"metadata", {{"name", "s1"}, {"namespace", "default"},
                                               {"uid", "su"}, {"resourceVersion", "77"}}}}
                      .dump(),
                  "77");
  const nlohmann::json spec = {
      {"volumes", {{{"name", "v"}, {"secret", {{"secretName", "s1"}}}}}},
      {"containers",
       {{{"name", "c"},
         {"env", {{{"name", "E"}, {"valueFrom", {{"configMapKeyRef", {{"name", "c1"}, {"key", "k"}}}}}}}}}}}};
  hub->send("edge-0", message("insert", "default/pod/web", pod("web", "wu", "5", spec), "5"));
  const auto patch = wait_for("edge-0", [](const wire::Message& m) {
    return m.route.resource == "default/podpatch/web";
  });
  ASSERT_TRUE(patch);
  const auto body = nlohmann::json::parse(patch->content_string().value_or("{}"));
  EXPECT_EQ(body["metadata"]["uid"], "wu");
  EXPECT_EQ(body["status"]["phase"], "Running");
  EXPECT_TRUE(wait_for("edge-0", [](const wire::Message& m) {
    return m.route.operation == "query" && m.route.resource == "default/configmap/c1";
  }));
  EXPECT_TRUE(wait_for("edge-0", [](const wire::Message& m) {
    return m.route.operation == "query" && m.route.resource == "default/secret/s1";
  }));
  // The secret answer is stored and ACKed (it carries a resourceversion).
  EXPECT_TRUE(wait_for("edge-0", [](const wire::Message& m) {
    return m.route.operation == "response" && m.route.resource == "default/secret/s1";
  }));
  ASSERT_TRUE(eventually([&] {
    for (const auto& o : fleet->objects_of("edge-0")) {
      if (o.kind == "Secret" && o.name == "s1" && o.resource_version == "77") return true;
    }
    return false;
  }));
}

TEST_F(FleetTest, ReconnectsAfterTheHubDropsTheConnection) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1 && fleet->stats().connected == 1; }));
  ASSERT_TRUE(hub->drop("edge-0"));
  ASSERT_TRUE(eventually([&] { return hub->accepted() == 2 && fleet->stats().connected == 1; }));
  const auto s = fleet->stats();
  EXPECT_EQ(s.connects, 2u);
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_EQ(s.disconnects, 1u);
  EXPECT_EQ(hub->upgrade_headers("edge-0").size(), 2u);
  // The new connection starts over with a keepalive.
  ASSERT_TRUE(eventually([&] {
    int keepalives = 0;
    for (const auto& m : from("edge-0")) keepalives += m.route.operation == "keepalive";
    return keepalives >= 2;
  }));
}

TEST_F(FleetTest, RecordsTheReplicaThatDeliveredEachObject) {
  FakeHubOptions hub_options;
  hub_options.replica_header = "hub-x";
  start(1, {}, hub_options);
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1 && fleet->stats().connected == 1; }));
  ASSERT_TRUE(hub->send("edge-0", message("insert", "default/pod/web", pod("web", "u1", "7"), "7")));
  ASSERT_TRUE(eventually([&] { return !fleet->objects_of("edge-0").empty(); }));
  const auto objects = fleet->objects_of("edge-0");
  EXPECT_EQ(objects[0].replica, "hub-x");
  const auto node = fleet->state_json()["nodes"][0];
  EXPECT_EQ(node["replica"], "hub-x");
  EXPECT_EQ(node["lastDeliveryReplica"], "hub-x");
  EXPECT_GE(node["deliveriesThisConnection"].get<int>(), 1);
  EXPECT_EQ(node["objects"][0]["replica"], "hub-x");
}

TEST_F(FleetTest, WithoutTheReplicaHeaderTheReplicaIsEmpty) {
  start();
  ASSERT_TRUE(eventually([&] { return fleet->stats().connected == 1; }));
  EXPECT_EQ(fleet->state_json()["nodes"][0]["replica"], "");
}

TEST_F(FleetTest, AbandonLeavesTheOldConnectionOpenAndDialsAgain) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1 && fleet->stats().connected == 1; }));
  EXPECT_FALSE(fleet->abandon("edge-99"));
  ASSERT_TRUE(fleet->abandon("edge-0"));
  ASSERT_TRUE(eventually([&] { return hub->accepted() == 2 && fleet->stats().connected == 1; }));
  // The new connection is used (it starts over with a keepalive) ...
  ASSERT_TRUE(eventually([&] {
    int keepalives = 0;
    for (const auto& m : from("edge-0")) keepalives += m.route.operation == "keepalive";
    return keepalives >= 2;
  }));
  // ... while the old one has not ended: the hub saw no close of any session.
  EXPECT_EQ(hub->sessions_ended(), 0u);
  const auto node = fleet->state_json()["nodes"][0];
  EXPECT_EQ(node["abandoned"], 1);
  EXPECT_EQ(node["connects"], 2);
  // A message to the abandoned connection is not taken: the hub now routes to the new one.
  ASSERT_TRUE(hub->send("edge-0", message("insert", "default/pod/web", pod("web", "u1", "7"), "7")));
  ASSERT_TRUE(eventually([&] { return !fleet->objects_of("edge-0").empty(); }));
  fleet->stop();
  ASSERT_TRUE(eventually([&] { return hub->sessions_ended() == 2; }));
}

TEST_F(FleetTest, KeepsRetryingWhileTheHubIsDown) {
  start(1, [](SimOptions& o) { o.reconnect_delay = 5ms; o.reconnect_max = 20ms; });
  ASSERT_TRUE(eventually([&] { return fleet->stats().connected == 1; }));
  hub->stop();  // closes the listener and every session
  ASSERT_TRUE(eventually([&] { return fleet->stats().connect_failures >= 3; }));
  EXPECT_EQ(fleet->stats().connected, 0);
}

TEST_F(FleetTest, DropAcksSkipsAcknowledgements) {
  start(1, [](SimOptions& o) { o.drop_acks = 1.0; });
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1; }));
  const auto before = fleet->stats().acks_dropped;
  const auto m = message("insert", "default/pod/p", pod("p", "u", "3"), "3");
  hub->send("edge-0", m);
  ASSERT_TRUE(eventually([&] { return fleet->stats().acks_dropped > before; }));
  ASSERT_TRUE(eventually([&] {
    for (const auto& o : fleet->objects_of("edge-0")) {
      if (o.name == "p") return true;
    }
    return false;
  }));
  for (const auto& got : from("edge-0")) EXPECT_NE(got.header.parent_msg_id, m.header.msg_id);
}

TEST_F(FleetTest, MeasuresDownstreamLatencyFromStampAnnotation) {
  start();
  ASSERT_TRUE(eventually([&] { return hub->sessions() == 1; }));
  auto p = pod("s", "su", "4");
  p["metadata"]["annotations"] = {{"edgehub.io/stamp", std::to_string(wire::now_millis())}};
  hub->send("edge-0", message("insert", "default/pod/s", p, "4"));
  ASSERT_TRUE(eventually([&] { return fleet->stats().downstream.count == 1; }, 5s))
      << fleet->stats().to_json().dump() << " " << fleet->state_json().dump();
  EXPECT_TRUE(eventually([&] { return fleet->stats().upstream.count > 0; }));
}

TEST_F(FleetTest, ManyNodesOverPlainWebSocket) {
  start(20, {}, {}, /*tls=*/false);
  ASSERT_TRUE(eventually([&] { return fleet->stats().connected == 20; }));
  EXPECT_TRUE(eventually([&] { return hub->sessions() == 20; }));
  EXPECT_EQ(fleet->state_json()["nodes"].size(), 20u);
}

}  // namespace
}  // namespace edgehub::sim

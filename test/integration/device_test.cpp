// Devices end to end: one hub replica against the embedded API server, edges speaking
// edgecore's device-twin protocol over real TLS. The recorded cloudcore ⇄ edgecore device
// exchange (kubeedge-captures/device.jsonl) is the reference for what goes down.
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/wire/builders.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "edge.hpp"
#include "hubs.hpp"

namespace edgehub::hub {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::Edge;
using test::eventually;
using test::is_device_object;

// Requests and reports go up from devicetwin.
wire::Message twin_request(Edge& edge, const std::string& op, const std::string& resource,
                           std::string content) {
  return edge.request(op, resource, std::move(content), "resource", "twin");
}
bool is_device_message(const wire::Message& m) {
  return m.route.operation != "response" && (m.route.resource == "membership" || is_device_object(m));
}
// Reads `n` device-related messages (membership, device, devicemodel) in arrival order.
std::vector<wire::Message> device_messages(Edge& edge, std::size_t n) {
  std::vector<wire::Message> out;
  while (out.size() < n) out.push_back(edge.next(is_device_message));
  return out;
}
// True when no device message arrives within `limit` (what must not be sent is not).
bool quiet(Edge& edge, std::chrono::milliseconds limit) {
  try {
    edge.next(is_device_message, limit);
    return false;
  } catch (const std::runtime_error&) {
    return true;
  }
}

// "<operation> <group> <resource>" of a message, the shape compared with the capture.
std::string shape(const wire::Message& m) {
  return m.route.operation + " " + m.route.group + " " + m.route.resource;
}

class DeviceIntegration : public ::testing::Test {
 protected:
  void start_hub(std::chrono::milliseconds report_window = 200ms) {
    auto options = hubs_.options("hub-device-test");
    options.config.hub.io_threads = 2;
    options.config.hub.cert_service.enabled = false;
    options.config.delivery.retry_interval = 300ms;
    options.config.devices.report_batch_window = report_window;
    hub_ = &hubs_.start(std::move(options));
  }
  std::unique_ptr<Edge> connect(const std::string& node) {
    return hubs_.owned_edge(*hub_, node, "hub-device-test");
  }

  devapi::Store& store() { return hubs_.store(); }

  // The capture's objects, as a user would create them (without server-set fields).
  static json capture_object(const std::string& resource) {
    std::ifstream in(std::string(EDGEHUB_TEST_DATA) + "/kubeedge-captures/device.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const auto record = json::parse(line);
      if (record.value("dir", "") != "down") continue;
      const auto m = json::parse(record["payload"].get<std::string>());
      if (m["route"]["operation"] == "insert" && m["route"]["resource"] == resource) {
        json object = m["content"];
        json meta = {{"name", object["metadata"]["name"]},
                     {"namespace", object["metadata"]["namespace"]}};
        if (object["metadata"].contains("labels")) meta["labels"] = object["metadata"]["labels"];
        object["metadata"] = meta;
        object.erase("status");
        return object;
      }
    }
    throw std::runtime_error("capture has no insert of " + resource);
  }
  // The capture's downstream device messages, as shapes, in order.
  static std::vector<std::string> capture_shapes() {
    std::ifstream in(std::string(EDGEHUB_TEST_DATA) + "/kubeedge-captures/device.jsonl");
    std::vector<std::string> out;
    std::string line;
    while (std::getline(in, line)) {
      const auto record = json::parse(line);
      if (record.value("dir", "") != "down") continue;
      const auto m = wire::decode(record["payload"].get<std::string>());
      if (m) out.push_back(shape(*m));
    }
    return out;
  }
  json create_model() { return store().create("devicemodels.devices.kubeedge.io", "default", capture_object("default/devicemodel/thermo-model")); }
  json create_device(const std::string& name, const std::string& node) {
    auto device = capture_object("default/device/thermo-1");
    device["metadata"]["name"] = name;
    device["spec"]["nodeName"] = node;
    return store().create("devices.devices.kubeedge.io", "default", device);
  }
  double metric(const std::string& name) { return test::metric(*hub_, name); }

  test::InProcessHubs hubs_{"device-it"};
  const net::CertAndKey& ca_ = hubs_.ca();
  Hub* hub_ = nullptr;
};

// The API actions of the capture — create model and device, patch the desired value, patch
// the model, delete the device, delete the model — give the capture's downstream sequence:
// same operations, groups, resources and order (KUBEEDGE-WIRE §10.2–4).
TEST_F(DeviceIntegration, ReplaysTheCapturedDeviceSequence) {
  start_hub();
  auto edge = connect("edge-1");
  create_model();
  create_device("thermo-1", "edge-1");
  auto bind = device_messages(*edge, 3);

  store().patch("devices.devices.kubeedge.io", "default", "thermo-1", devapi::PatchType::kMerge,
                json::parse(R"({"spec":{"properties":[{"name":"temperature","desired":{"value":"25","metadata":{"type":"int"}},)"
                            R"("visitors":{"protocolName":"modbus","configData":{"limit":1,"offset":2,"register":"HoldingRegister"}},)"
                            R"("reportCycle":10000,"collectCycle":10000,"reportToCloud":true}]}})"));
  auto desired = device_messages(*edge, 1);
  store().patch("devicemodels.devices.kubeedge.io", "default", "thermo-model", devapi::PatchType::kMerge,
                json::parse(R"({"spec":{"protocol":"modbus-rtu"}})"));
  auto model = device_messages(*edge, 1);
  store().remove("devices.devices.kubeedge.io", "default", "thermo-1");
  auto unbind = device_messages(*edge, 3);
  store().remove("devicemodels.devices.kubeedge.io", "default", "thermo-model");

  std::vector<std::string> got;
  for (const auto* batch : {&bind, &desired, &model, &unbind}) {
    for (const auto& m : *batch) got.push_back(shape(m));
  }
  EXPECT_EQ(got, capture_shapes());

  // Contents as devicetwin reads them.
  const auto added = bind[0].content_json();
  EXPECT_EQ(bind[0].route.source, "devicecontroller");
  EXPECT_EQ(added["added_devices"], json::parse(R"([{"id":"default/thermo-1","name":"thermo-1"}])"));
  EXPECT_TRUE(added["removed_devices"].is_null());
  EXPECT_TRUE(bind[0].header.resource_version.empty());
  EXPECT_EQ(bind[1].content_json()["kind"], "DeviceModel");
  EXPECT_EQ(bind[2].content_json()["spec"]["nodeName"], "edge-1");
  EXPECT_FALSE(bind[2].header.resource_version.empty());
  EXPECT_EQ(desired[0].content_json()["spec"]["properties"][0]["desired"]["value"], "25");
  EXPECT_EQ(model[0].content_json()["spec"]["protocol"], "modbus-rtu");
  const auto removed = unbind[1].content_json();
  EXPECT_TRUE(removed["added_devices"].is_null());
  EXPECT_EQ(removed["removed_devices"], json::parse(R"([{"id":"default/thermo-1","name":"thermo-1"}])"));

  // The model's CR delete sends nothing more (no node uses it).
  EXPECT_TRUE(quiet(*edge, 1s));
}

TEST_F(DeviceIntegration, TwinAndStateReportsArePatchedIntoTheDeviceStatusAndConfirmed) {
  start_hub();
  auto edge = connect("edge-1");
  create_model();
  create_device("thermo-1", "edge-1");
  device_messages(*edge, 3);

  const auto twin = twin_request(
      *edge, "update", "device/default/thermo-1/twin/edge_updated",
      R"({"event_id":"e1","timestamp":1795739770000,"twin":{"temperature":{)"
      R"("expected":{"value":"25","metadata":{"timestamp":1795739769000}},)"
      R"("actual":{"value":"21","metadata":{"timestamp":1795739770000}},"metadata":{"type":"int"}}}})");
  EXPECT_EQ(twin.route.source, "devicecontroller");
  EXPECT_EQ(twin.route.group, "twin");
  EXPECT_EQ(twin.route.resource, "twin");
  EXPECT_EQ(twin.content_string().value_or(""), "OK");

  auto status = store().get("devices.devices.kubeedge.io", "default", "thermo-1")["status"];
  ASSERT_EQ(status["twins"].size(), 1u) << status.dump();
  EXPECT_EQ(status["twins"][0]["propertyName"], "temperature");
  EXPECT_EQ(status["twins"][0]["reported"]["value"], "21");
  EXPECT_EQ(status["twins"][0]["reported"]["metadata"]["timestamp"], "1795739770000");
  EXPECT_EQ(status["twins"][0]["reported"]["metadata"]["type"], "int");
  EXPECT_EQ(status["twins"][0]["observedDesired"]["value"], "25");

  // State comes as a JSON string (§3.3).
  wire::Message state;
  state.set_content_string(R"({"event_id":"e2","timestamp":1795739771000,"device":{"name":"thermo-1","state":"online","lastOnlineTime":"2026-11-27T00:36:11Z"}})");
  const auto confirmed = twin_request(*edge, "update", "device/default/thermo-1/state/update", state.content);
  EXPECT_EQ(confirmed.content_string().value_or(""), "OK");
  status = store().get("devices.devices.kubeedge.io", "default", "thermo-1")["status"];
  EXPECT_EQ(status["state"], "online");
  EXPECT_EQ(status["lastOnlineTime"], "2026-11-27T00:36:11Z");
  EXPECT_EQ(status["twins"][0]["reported"]["value"], "21") << "kept by the state patch";

  // A status-only change is the edge's own report: nothing goes back down.
  EXPECT_TRUE(quiet(*edge, 1s));
}

// A node's reports within the window become one PATCH per device.
TEST_F(DeviceIntegration, ReportsWithinTheWindowBecomeOnePatch) {
  start_hub(2s);
  auto edge = connect("edge-1");
  create_model();
  create_device("thermo-1", "edge-1");
  device_messages(*edge, 3);
  const double before = metric("edgehub_device_status_patches_total");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(edge->send("update", "device/default/thermo-1/twin/edge_updated",
                             R"({"event_id":"e","timestamp":1,"twin":{"temperature":{"actual":{"value":")" +
                                 std::to_string(20 + i) + R"("},"metadata":{"type":"int"}}}})",
                             "resource", "twin"));
  }
  for (const auto& id : ids) {
    const auto c = edge->next([&](const wire::Message& m) { return m.header.parent_msg_id == id; });
    EXPECT_EQ(c.content_string().value_or(""), "OK");
  }
  EXPECT_EQ(metric("edgehub_device_status_patches_total") - before, 1.0);
  EXPECT_EQ(store().get("devices.devices.kubeedge.io", "default", "thermo-1")["status"]["twins"][0]["reported"]["value"], "22");
}

TEST_F(DeviceIntegration, AReportForADeviceOfAnotherNodeIsRefused) {
  start_hub();
  auto edge = connect("edge-1");
  create_model();
  create_device("thermo-2", "edge-2");
  ASSERT_TRUE(eventually([&] { return metric("edgehub_devices") == 1.0; }));
  const auto refused = twin_request(
      *edge, "update", "device/default/thermo-2/twin/edge_updated",
      R"({"event_id":"e","timestamp":1,"twin":{"temperature":{"actual":{"value":"99"}}}})");
  EXPECT_EQ(refused.route.group, "twin") << "confirmed, so devicetwin stops re-sending it";
  EXPECT_EQ(refused.content_json()["ErrStatus"]["reason"], "Forbidden");
  EXPECT_EQ(metric("edgehub_device_reports_refused_total"), 1.0);
  EXPECT_FALSE(store().get("devices.devices.kubeedge.io", "default", "thermo-2").contains("status") &&
               store().get("devices.devices.kubeedge.io", "default", "thermo-2")["status"].contains("twins"));
  // A report for a device that does not exist at all is refused the same way.
  const auto unknown = twin_request(*edge, "update", "device/default/nothing/state/update",
                                     R"("{\"device\":{\"state\":\"online\"}}")");
  EXPECT_EQ(unknown.content_json()["ErrStatus"]["reason"], "Forbidden");
}

// Moved: the old node loses it (model, membership, device), the new one gains it.
TEST_F(DeviceIntegration, ADeviceMovedBetweenNodesLeavesOneAndJoinsTheOther) {
  start_hub();
  auto one = connect("edge-1");
  auto two = std::make_unique<Edge>(ca_, hub_->edge_port(), "edge-2");
  ASSERT_TRUE(eventually([&] { return hub_->sessions() == 2; }));
  create_model();
  create_device("thermo-1", "edge-1");
  device_messages(*one, 3);
  store().patch("devices.devices.kubeedge.io", "default", "thermo-1", devapi::PatchType::kMerge,
                json::parse(R"({"spec":{"nodeName":"edge-2"}})"));
  std::vector<std::string> left;
  for (const auto& m : device_messages(*one, 3)) left.push_back(shape(m));
  EXPECT_EQ(left, (std::vector<std::string>{"delete resource default/devicemodel/thermo-model",
                                            "update twin membership",
                                            "delete resource default/device/thermo-1"}));
  const auto joined = device_messages(*two, 3);
  std::vector<std::string> got;
  for (const auto& m : joined) got.push_back(shape(m));
  EXPECT_EQ(got, (std::vector<std::string>{"update twin membership",
                                           "insert resource default/devicemodel/thermo-model",
                                           "insert resource default/device/thermo-1"}));
  EXPECT_EQ(joined[2].content_json()["spec"]["nodeName"], "edge-2");
  // Reports now belong to edge-2 only.
  const auto refused = twin_request(*one, "update", "device/default/thermo-1/twin/edge_updated",
                                    R"({"twin":{"temperature":{"actual":{"value":"1"}}}})");
  EXPECT_EQ(refused.content_json()["ErrStatus"]["reason"], "Forbidden");
}

// A node connecting gets its devices (bound while it was away) as cloudcore's sync loop sends
// them, and membership/detail answers with its device list.
TEST_F(DeviceIntegration, ReconnectResyncsDevicesAndAnswersMembershipDetail) {
  start_hub();
  create_model();
  create_device("thermo-1", "edge-1");
  create_device("thermo-2", "edge-1");
  create_device("other", "edge-9");
  ASSERT_TRUE(eventually([&] { return metric("edgehub_devices") == 3.0; }));
  auto edge = connect("edge-1");
  std::vector<std::string> got;
  const auto resync = device_messages(*edge, 4);
  for (const auto& m : resync) got.push_back(shape(m));
  EXPECT_EQ(got, (std::vector<std::string>{"update twin membership",
                                           "update resource default/devicemodel/thermo-model",
                                           "update resource default/device/thermo-1",
                                           "update resource default/device/thermo-2"}));
  EXPECT_EQ(resync[0].content_json()["added_devices"].size(), 2u);

  wire::Message detail;
  detail.set_content_string(R"({"event_type":"group_membership_event","event_id":"123","operation":"detail","group_id":"edge-1","timestamp":1})");
  const auto answer = twin_request(*edge, "get", "membership/detail", detail.content);
  EXPECT_EQ(answer.route.source, "devicecontroller");
  EXPECT_EQ(answer.route.group, "twin");
  EXPECT_EQ(answer.route.resource, "membership/detail");
  const auto content = answer.content_json();
  EXPECT_EQ(content["event_id"], "123");
  EXPECT_EQ(content["devices"], json::parse(R"([{"id":"default/thermo-1","name":"thermo-1"},)"
                                            R"({"id":"default/thermo-2","name":"thermo-2"}])"));

  // Gone while away: the next connect's membership/detail no longer lists it.
  edge->close();
  edge.reset();
  ASSERT_TRUE(eventually([&] { return hub_->sessions() == 0; }));
  store().remove("devices.devices.kubeedge.io", "default", "thermo-2");
  ASSERT_TRUE(eventually([&] { return metric("edgehub_devices") == 2.0; }));
  // The node's NodeSync record says its edge holds both devices and the model, ACKed: the
  // resync removes thermo-2 (membership, then its delete, as an unbinding) and lists the
  // remaining member; thermo-1 and the model, unchanged, are not sent again.
  ASSERT_TRUE(eventually([&] {
    const auto objects = store().get("nodesyncs.edgehub.io", "", "edge-1")["status"]["objects"];
    return objects.size() == 3;
  }));
  auto back = connect("edge-1");
  const auto again = device_messages(*back, 3);
  got.clear();
  for (const auto& m : again) got.push_back(shape(m));
  EXPECT_EQ(got, (std::vector<std::string>{"update twin membership",
                                           "delete resource default/device/thermo-2",
                                           "update twin membership"}));
  EXPECT_EQ(again[0].content_json()["removed_devices"],
            json::parse(R"([{"id":"default/thermo-2","name":"thermo-2"}])"));
  EXPECT_EQ(again[2].content_json()["added_devices"].size(), 1u);
  const auto answer2 = twin_request(*back, "get", "membership/detail", detail.content);
  EXPECT_EQ(answer2.content_json()["devices"].size(), 1u);
}

// The simulator against the hub: its nodes get their devices (membership and objects, in
// the state dump that convergence checks compare), report twins, and the reports land in the
// Device status.
TEST_F(DeviceIntegration, SimulatedFleetHoldsItsDevicesAndItsTwinReportsLand) {
  start_hub(100ms);
  create_model();
  for (int n = 0; n < 2; ++n) {
    for (int d = 0; d < 2; ++d) {
      create_device("dev-" + std::to_string(n) + "-" + std::to_string(d), "sim-" + std::to_string(n));
    }
  }
  sim::SimOptions o;
  o.port = hub_->edge_port();
  o.nodes = 2;
  o.prefix = "sim-";
  o.server_ca_pem = net::to_pem(ca_.cert.get());
  o.client_ca_cert_pem = net::to_pem(ca_.cert.get());
  o.client_ca_key_pem = net::to_pem(ca_.key.get());
  o.twin_every = 300ms;
  sim::Fleet fleet(o);
  fleet.start();
  auto devices_of = [&](const std::string& node) {
    const auto state = fleet.state_json();
    for (const auto& n : state["nodes"]) {
      if (n["name"] == node) return n["devices"];
    }
    return json();
  };
  ASSERT_TRUE(eventually([&] {
    return devices_of("sim-0") == json::parse(R"(["default/dev-0-0","default/dev-0-1"])") &&
           devices_of("sim-1") == json::parse(R"(["default/dev-1-0","default/dev-1-1"])");
  })) << fleet.state_json().dump();
  // The membership can come first (the membership/detail answer); the objects follow.
  auto held = [&](const std::string& kind) {
    const auto objects = fleet.objects_of("sim-1");
    return std::count_if(objects.begin(), objects.end(), [&](const sim::ObjectRecord& r) {
      return r.kind == kind && !r.deleted;
    });
  };
  EXPECT_TRUE(eventually([&] { return held("Device") == 2 && held("DeviceModel") == 1; }));
  ASSERT_TRUE(eventually([&] { return fleet.stats().twin_confirms >= 4; }));
  EXPECT_EQ(fleet.stats().twin_refused, 0u);
  // A report is confirmed when it is accepted; its patch lands at the end of the batch window,
  // so the confirmations counted above may belong to the other devices' reports.
  json status;
  ASSERT_TRUE(eventually([&] {
    status = store().get("devices.devices.kubeedge.io", "default", "dev-1-1").value("status", json::object());
    return status.contains("twins");
  })) << status.dump();
  EXPECT_EQ(status["twins"][0]["propertyName"], "temperature");
  EXPECT_EQ(status["twins"][0]["reported"]["value"], "20") << status.dump();

  // Unbound while connected: the node's state follows.
  store().remove("devices.devices.kubeedge.io", "default", "dev-1-1");
  ASSERT_TRUE(eventually([&] { return devices_of("sim-1") == json::parse(R"(["default/dev-1-0"])"); }));
  fleet.stop();
}

}  // namespace
}  // namespace edgehub::hub

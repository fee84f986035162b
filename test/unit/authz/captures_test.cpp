// Every request a real edgecore sent in the recorded sessions passes the rules.
#include <edgehub/authz/rules.hpp>
#include <edgehub/wire/resource.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace edgehub::authz {
namespace {

using nlohmann::json;

// Edge→cloud requests of every capture (`{t, dir, opcode, payload}` lines).
std::vector<json> upstream_requests() {
  std::vector<json> out;
  const auto root = std::filesystem::path(EDGEHUB_TEST_DATA) / "kubeedge-captures";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".jsonl") continue;
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      const auto record = json::parse(line, nullptr, false);
      if (!record.is_object() || record.value("dir", "") != "up") continue;
      if (!record.contains("payload") || !record["payload"].is_string()) continue;
      auto message = json::parse(record["payload"].get<std::string>(), nullptr, false);
      if (!message.is_object() || !message.contains("route")) continue;
      const auto op = message["route"].value("operation", "");
      if (op.empty() || op == "keepalive" || op == "response") continue;
      out.push_back(std::move(message));
    }
  }
  return out;
}

json content(const json& message) {
  const auto& c = message.contains("content") ? message["content"] : json();
  return c.is_string() ? json::parse(c.get<std::string>(), nullptr, false) : c;
}

TEST(Captures, EveryEdgeRequestIsAllowed) {
  const auto requests = upstream_requests();
  std::map<std::string, int> checked;
  for (const auto& m : requests) {
    const auto op = m["route"].value("operation", "");
    const auto parsed = wire::parse_resource(m["route"].value("resource", ""));
    ASSERT_TRUE(parsed) << m.dump();
    const auto& r = *parsed;
    EXPECT_TRUE(object_name(r.ns, r.name)) << m.dump();
    const std::string key = op + " " + r.type;
    const auto body = content(m);
    if (r.type == "node" && op == "insert") {
      const auto d = node_create(r.name, body);
      EXPECT_TRUE(d) << d.message;
    } else if (r.type == "nodepatch") {
      const auto d = node_status_patch(body, json::object());
      EXPECT_TRUE(d) << d.message;
    } else if (r.type == "podpatch") {
      const auto d = pod_status_patch(body);
      EXPECT_TRUE(d) << d.message;
    } else if (r.type == "lease") {
      EXPECT_EQ(r.ns, "kube-node-lease");
    }
    ++checked[key];
  }
  // The captures hold registration, status and lease traffic: make sure it was seen.
  EXPECT_GT(checked["insert node"], 0);
  EXPECT_GT(checked["patch nodepatch"], 1);
  EXPECT_GT(checked["patch podpatch"], 0);
  EXPECT_GT(checked["update lease"], 0);
  EXPECT_GT(checked["query secret"], 0);
}

}  // namespace
}  // namespace edgehub::authz

#include <edgehub/authz/rules.hpp>
#include <gtest/gtest.h>

namespace edgehub::authz {
namespace {

using nlohmann::json;

json pod() {
  return json::parse(R"({"metadata":{"name":"app","namespace":"shop","uid":"u-1"},
                         "spec":{"nodeName":"edge-1","serviceAccountName":"app-sa"}})");
}

// What edged's token manager sends for a projected service-account token volume.
json request() {
  return json::parse(R"({"spec":{"audiences":["https://kubernetes.default.svc"],
      "expirationSeconds":3607,
      "boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"app","uid":"u-1"}}})");
}

TEST(Token, BoundToOwnPodIsRebuilt) {
  auto r = request();
  r["spec"]["boundObjectRef"]["extra"] = "x";
  r["metadata"] = {{"name", "injected"}};
  r["status"] = {{"token", "forged"}};
  const auto t = token_request("edge-1", "shop", "app-sa", r, pod());
  ASSERT_TRUE(t.decision) << t.decision.message;
  EXPECT_EQ(t.body, json::parse(R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",
      "spec":{"audiences":["https://kubernetes.default.svc"],"expirationSeconds":3607,
      "boundObjectRef":{"apiVersion":"v1","kind":"Pod","name":"app","uid":"u-1"}}})"));
  EXPECT_EQ(bound_pod_name(r), "app");
}

TEST(Token, DefaultsWhenTheEdgeLeavesThemOut) {
  auto r = request();
  r["spec"].erase("expirationSeconds");
  r["spec"].erase("audiences");
  const auto t = token_request("edge-1", "shop", "app-sa", r, pod());
  ASSERT_TRUE(t.decision);
  EXPECT_EQ(t.body["spec"]["expirationSeconds"], 3600);
  EXPECT_EQ(t.body["spec"]["audiences"], json::array());
}

TEST(Token, UnboundOrMisboundIsRefused) {
  auto with = [](auto edit) {
    auto r = request();
    auto p = pod();
    edit(r, p);
    return token_request("edge-1", "shop", "app-sa", r, p).decision.reason;
  };
  EXPECT_EQ(with([](json& r, json&) { r["spec"].erase("boundObjectRef"); }), Reason::token_binding);
  EXPECT_EQ(with([](json& r, json&) { r["spec"]["boundObjectRef"]["kind"] = "Secret"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json& r, json&) { r["spec"]["boundObjectRef"]["apiVersion"] = "v2"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json& r, json&) { r["spec"]["boundObjectRef"].erase("uid"); }),
            Reason::token_binding);
  EXPECT_EQ(with([](json& r, json&) { r["spec"]["boundObjectRef"]["uid"] = "u-2"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json&, json& p) { p["spec"]["nodeName"] = "edge-2"; }), Reason::token_binding);
  EXPECT_EQ(with([](json&, json& p) { p["spec"]["serviceAccountName"] = "edgehub"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json&, json& p) { p["spec"].erase("serviceAccountName"); }),
            Reason::token_binding);
  EXPECT_EQ(with([](json&, json& p) { p["metadata"]["namespace"] = "kube-system"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json&, json& p) { p = json(); }), Reason::token_binding);  // no such pod
  EXPECT_EQ(with([](json& r, json&) { r["spec"]["boundObjectRef"]["name"] = "a/../b"; }),
            Reason::token_binding);
  EXPECT_EQ(with([](json& r, json&) { r = json::array(); }), Reason::invalid_body);
}

TEST(Token, ExpiryAndAudiencesAreBounded) {
  auto with = [](json spec_change) {
    auto r = request();
    for (const auto& [k, v] : spec_change.items()) r["spec"][k] = v;
    return token_request("edge-1", "shop", "app-sa", r, pod()).decision.reason;
  };
  EXPECT_EQ(with({{"expirationSeconds", 599}}), Reason::token_limits);
  EXPECT_EQ(with({{"expirationSeconds", 600}}), Reason::allowed);
  EXPECT_EQ(with({{"expirationSeconds", 48 * 3600}}), Reason::allowed);
  EXPECT_EQ(with({{"expirationSeconds", 48 * 3600 + 1}}), Reason::token_limits);
  EXPECT_EQ(with({{"expirationSeconds", 4294967296LL * 100}}), Reason::token_limits);
  EXPECT_EQ(with({{"expirationSeconds", "3600"}}), Reason::invalid_body);
  EXPECT_EQ(with({{"audiences", json::array({""})}}), Reason::token_limits);
  EXPECT_EQ(with({{"audiences", json::array({1})}}), Reason::token_limits);
  EXPECT_EQ(with({{"audiences", "api"}}), Reason::token_limits);
  EXPECT_EQ(with({{"audiences", json::array({std::string(1025, 'a')})}}), Reason::token_limits);
  EXPECT_EQ(with({{"audiences", json(std::vector<std::string>(17, "a"))}}), Reason::token_limits);
  EXPECT_EQ(with({{"audiences", json(std::vector<std::string>(16, "a"))}}), Reason::allowed);
}

TEST(Event, AboutTheNodeOrAPodOfTheNamespace) {
  const auto node_event = json::parse(R"({"metadata":{"name":"edge-1.17a","namespace":"default"},
      "involvedObject":{"kind":"Node","name":"edge-1","uid":"edge-1"},"reason":"Starting"})");
  auto s = event_subject("edge-1", "default", node_event, 200);
  EXPECT_TRUE(s.decision);
  EXPECT_TRUE(s.node);
  const auto pod_event = json::parse(R"({"metadata":{"name":"app.17a","namespace":"shop"},
      "involvedObject":{"kind":"Pod","name":"app","namespace":"shop"},"reason":"Pulled"})");
  s = event_subject("edge-1", "shop", pod_event, 200);
  EXPECT_TRUE(s.decision);
  EXPECT_FALSE(s.node);
  EXPECT_EQ(s.pod_name, "app");
}

TEST(Event, OthersAreRefused) {
  const auto event = json::parse(R"({"metadata":{"name":"x","namespace":"shop"},
      "involvedObject":{"kind":"Pod","name":"app","namespace":"shop"}})");
  EXPECT_EQ(event_subject("edge-1", "shop", event, 16 * 1024 + 1).decision.reason,
            Reason::too_large);
  EXPECT_EQ(event_subject("edge-1", "kube-system", event, 100).decision.reason,
            Reason::invalid_name);
  auto other = event;
  other["involvedObject"] = {{"kind", "Node"}, {"name", "master"}};
  EXPECT_EQ(event_subject("edge-1", "shop", other, 100).decision.reason, Reason::event_object);
  other["involvedObject"] = {{"kind", "Secret"}, {"name", "s"}, {"namespace", "shop"}};
  EXPECT_EQ(event_subject("edge-1", "shop", other, 100).decision.reason, Reason::event_object);
  other["involvedObject"] = {{"kind", "Pod"}, {"name", "app"}, {"namespace", "default"}};
  EXPECT_EQ(event_subject("edge-1", "shop", other, 100).decision.reason, Reason::event_object);
  EXPECT_EQ(event_subject("edge-1", "shop", json::array(), 2).decision.reason,
            Reason::invalid_body);
}

}  // namespace
}  // namespace edgehub::authz

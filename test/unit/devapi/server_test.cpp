// The server over HTTP: verbs, discovery, subresources, token requests and watch streams.
#include <gtest/gtest.h>

#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <edgehub/devapi/server.hpp>
#include <memory>
#include <mutex>
#include <thread>

#include "http_client.hpp"

namespace edgehub::devapi {
namespace {

using nlohmann::json;
using testing::http_call;
using testing::http_get;
using testing::WatchStream;

json pod_json(const std::string& name, const std::string& node = "node-x") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
          {"spec", {{"nodeName", node}, {"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}};
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start(); }
  std::uint16_t port() const { return server_.port(); }
  testing::HttpResult post(const std::string& target, const json& body) {
    return http_call(port(), {"POST", target, body.dump(), "application/json", {}});
  }
  testing::HttpResult patch(const std::string& target, const json& body, const std::string& type) {
    return http_call(port(), {"PATCH", target, body.dump(), type, {}});
  }
  std::string rv_now() const { return std::to_string(server_.store().current_resource_version()); }
  Server server_{ServerOptions{}};
};

TEST_F(ServerTest, UrlAndPort) {
  EXPECT_NE(port(), 0);
  EXPECT_EQ(server_.url(), "http://127.0.0.1:" + std::to_string(port()));
}

TEST_F(ServerTest, Discovery) {
  const auto version = http_get(port(), "/version");
  EXPECT_EQ(version.status, 200);
  EXPECT_EQ(version.json()["major"], "1");
  EXPECT_EQ(http_get(port(), "/api").json()["versions"], json({"v1"}));
  const json groups = http_get(port(), "/apis").json();
  EXPECT_EQ(groups["kind"], "APIGroupList");
  std::vector<std::string> names;
  for (const auto& g : groups["groups"]) names.push_back(g["name"]);
  EXPECT_EQ(names,
            (std::vector<std::string>{"coordination.k8s.io", "devices.kubeedge.io", "edgehub.io"}));
  const json core = http_get(port(), "/api/v1").json();
  EXPECT_EQ(core["groupVersion"], "v1");
  bool pods_status = false;
  for (const auto& r : core["resources"]) pods_status |= r["name"] == "pods/status";
  EXPECT_TRUE(pods_status);
  const json devices = http_get(port(), "/apis/devices.kubeedge.io/v1beta1").json();
  EXPECT_EQ(devices["resources"][0]["name"], "devices");
  const json nodesyncs = http_get(port(), "/apis/edgehub.io/v1alpha1").json();
  EXPECT_EQ(nodesyncs["resources"][0]["namespaced"], false);
  EXPECT_EQ(http_get(port(), "/openapi/v2").status, 404);
  EXPECT_EQ(http_get(port(), "/openapi/v3").status, 200);
  EXPECT_EQ(http_get(port(), "/healthz").body, "ok");
}

// Found by fuzzing (test/fuzz devapi_http): the Status message quotes the query value, and a
// byte that is not UTF-8 made the JSON serializer throw while answering, out of the handler.
// /metrics counts requests as kube-apiserver's apiserver_request_total does, by verb, group,
// resource, subresource and code; a path's free text never becomes a label.
TEST_F(ServerTest, MetricsCountRequestsByVerbResourceAndCode) {
  ASSERT_EQ(post("/api/v1/namespaces/default/pods", pod_json("a")).status, 201);
  EXPECT_EQ(post("/api/v1/namespaces/default/pods", pod_json("a")).status, 409);
  EXPECT_EQ(http_get(port(), "/api/v1/namespaces/default/pods/a").status, 200);
  EXPECT_EQ(http_get(port(), "/api/v1/pods").status, 200);
  EXPECT_EQ(http_get(port(), "/api/v1/namespaces/default/pods/a/no-such-part").status, 404);
  EXPECT_EQ(http_get(port(), "/apis/no.such.group/v1/things").status, 404);
  const auto lease = json{{"metadata", {{"name", "n1"}}}, {"spec", {{"holderIdentity", "n1"}}}};
  ASSERT_EQ(post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease).status,
            201);
  const auto scraped = http_get(port(), "/metrics");
  ASSERT_EQ(scraped.status, 200);
  const auto& text = scraped.body;
  const auto has = [&](const std::string& series) {
    return text.find(series) != std::string::npos;
  };
  EXPECT_TRUE(has(R"(apiserver_request_total{verb="POST",group="",resource="pods",subresource="",code="201"} 1)"))
      << text;
  EXPECT_TRUE(has(R"(apiserver_request_total{verb="POST",group="",resource="pods",subresource="",code="409"} 1)"));
  EXPECT_TRUE(has(R"(apiserver_request_total{verb="GET",group="",resource="pods",subresource="",code="200"} 1)"));
  EXPECT_TRUE(has(R"(apiserver_request_total{verb="LIST",group="",resource="pods",subresource="",code="200"} 1)"));
  EXPECT_TRUE(has(R"(apiserver_request_total{verb="POST",group="coordination.k8s.io",resource="leases",subresource="",code="201"} 1)"));
  EXPECT_TRUE(has(R"(subresource="other",code="404"} 1)"));
  EXPECT_FALSE(has("no-such-part"));
  EXPECT_FALSE(has("no.such.group"));
}

TEST_F(ServerTest, ErrorQuotingBytesThatAreNotUtf8IsAnswered) {
  const auto bad = http_get(port(), "/api/v1/pods?resourceVersion=2\xbe&resourceVersionMatch=Exact");
  EXPECT_GE(bad.status, 400);
  EXPECT_EQ(bad.json()["kind"], "Status");
  EXPECT_EQ(http_get(port(), "/healthz").status, 200);
}

TEST_F(ServerTest, CrudOverHttp) {
  const auto created = post("/api/v1/namespaces/default/pods", pod_json("a"));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json()["metadata"]["namespace"], "default");

  auto got = http_get(port(), "/api/v1/namespaces/default/pods/a");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.json()["kind"], "Pod");

  json updated = got.json();
  updated["metadata"]["labels"]["v"] = "2";
  auto put = http_call(
      port(), {"PUT", "/api/v1/namespaces/default/pods/a", updated.dump(), "application/json", {}});
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.json()["metadata"]["labels"]["v"], "2");
  put = http_call(
      port(), {"PUT", "/api/v1/namespaces/default/pods/a", updated.dump(), "application/json", {}});
  EXPECT_EQ(put.status, 409);

  const auto list = http_get(port(), "/api/v1/pods?labelSelector=app%3Dweb");
  EXPECT_EQ(list.json()["items"].size(), 1U);
  EXPECT_EQ(http_get(port(), "/api/v1/namespaces/other/pods").json()["items"].size(), 0U);

  auto del = http_call(
      port(), {"DELETE", "/api/v1/namespaces/default/pods/a?gracePeriodSeconds=0", "", "", {}});
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(http_get(port(), "/api/v1/namespaces/default/pods/a").status, 404);
}

TEST_F(ServerTest, ClusterScopedAndCustomResources) {
  EXPECT_EQ(post("/apis/edgehub.io/v1alpha1/nodesyncs", {{"apiVersion", "edgehub.io/v1alpha1"},
                                                         {"kind", "NodeSync"},
                                                         {"metadata", {{"name", "edge-1"}}}})
                .status,
            201);
  const auto status = patch("/apis/edgehub.io/v1alpha1/nodesyncs/edge-1/status",
                            {{"status", {{"owner", "hub-0"}}}}, "application/merge-patch+json");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(status.json()["status"]["owner"], "hub-0");
  EXPECT_EQ(post("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devices",
                 {{"metadata", {{"name", "d1"}}}, {"spec", {{"nodeName", "edge-1"}}}})
                .status,
            201);
  EXPECT_EQ(post("/apis/devices.kubeedge.io/v1beta1/namespaces/default/devicemodels",
                 {{"metadata", {{"name", "m1"}}}})
                .status,
            201);
  EXPECT_EQ(post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                 {{"metadata", {{"name", "edge-1"}}}, {"spec", {{"holderIdentity", "edge-1"}}}})
                .status,
            201);
  const auto lease = patch("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/edge-1",
                           {{"spec", {{"renewTime", "2026-01-01T00:00:00.000000Z"}}}},
                           "application/merge-patch+json");
  EXPECT_EQ(lease.json()["spec"]["holderIdentity"], "edge-1");
}

TEST_F(ServerTest, NodeStatusStrategicMergePatchMergesConditions) {
  post("/api/v1/nodes", {{"metadata", {{"name", "node-x"}}}});
  patch("/api/v1/nodes/node-x/status",
        {{"status",
          {{"conditions",
            {{{"type", "Ready"}, {"status", "False"}},
             {{"type", "DiskPressure"}, {"status", "False"}}}}}}},
        "application/strategic-merge-patch+json");
  const auto result =
      patch("/api/v1/nodes/node-x/status",
            {{"status", {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}}}}},
            "application/strategic-merge-patch+json");
  ASSERT_EQ(result.status, 200) << result.body;
  const json conditions = result.json()["status"]["conditions"];
  ASSERT_EQ(conditions.size(), 2U);
  EXPECT_EQ(conditions[0], (json{{"type", "Ready"}, {"status", "True"}}));
  const auto bad = http_call(port(), {"PATCH", "/api/v1/nodes/node-x", "{}", "text/plain", {}});
  EXPECT_EQ(bad.status, 415);
}

TEST_F(ServerTest, ProtobufBodiesOnlyForTheKindsKubectlGeneratorsPost) {
  const std::string protobuf = "application/vnd.kubernetes.protobuf";
  EXPECT_EQ(
      http_call(port(), {"POST", "/api/v1/namespaces/default/pods", "k8s", protobuf, {}}).status,
      415);
  EXPECT_EQ(
      http_call(port(), {"POST", "/api/v1/namespaces/default/configmaps", "garbage", protobuf, {}})
          .status,
      400);
  // "k8s\0" + Unknown{raw = ConfigMap{metadata{name "c"}, data{"k": "v"}}}
  const std::string meta = std::string("\x0a\x01", 2) + "c";
  const std::string entry = std::string("\x0a\x01", 2) + "k" + std::string("\x12\x01", 2) + "v";
  const std::string cm = std::string("\x0a", 1) + static_cast<char>(meta.size()) + meta +
                         std::string("\x12", 1) + static_cast<char>(entry.size()) + entry;
  const std::string body =
      std::string("k8s\0", 4) + std::string("\x12", 1) + static_cast<char>(cm.size()) + cm;
  const auto created =
      http_call(port(), {"POST", "/api/v1/namespaces/default/configmaps", body, protobuf, {}});
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.json()["data"], (json{{"k", "v"}}));
}

TEST_F(ServerTest, TableOnlyWhenAskedForFirst) {
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  auto get_with = [&](const std::string& accept) {
    return http_call(port(), {"GET", "/api/v1/namespaces/default/pods", "", "", {{"Accept", accept}}});
  };
  const auto table = get_with("application/json;as=Table;v=v1;g=meta.k8s.io,application/json");
  EXPECT_EQ(table.status, 200);
  EXPECT_EQ(table.json()["kind"], "Table");
  const auto plain = get_with("application/json, application/json;as=Table;v=v1;g=meta.k8s.io");
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.json()["kind"], "PodList");
}

TEST_F(ServerTest, TokenRequest) {
  EXPECT_EQ(post("/api/v1/namespaces/default/serviceaccounts/edge/token", json::object()).status,
            404);
  post("/api/v1/namespaces/default/serviceaccounts", {{"metadata", {{"name", "edge"}}}});
  const auto result = post("/api/v1/namespaces/default/serviceaccounts/edge/token",
                           {{"apiVersion", "authentication.k8s.io/v1"},
                            {"kind", "TokenRequest"},
                            {"spec", {{"audiences", {"edgehub"}}, {"expirationSeconds", 3600}}}});
  ASSERT_EQ(result.status, 201) << result.body;
  const json body = result.json();
  EXPECT_EQ(body["kind"], "TokenRequest");
  EXPECT_FALSE(body["status"]["token"].get<std::string>().empty());
  EXPECT_TRUE(body["status"].contains("expirationTimestamp"));
  EXPECT_EQ(body["spec"]["audiences"], json({"edgehub"}));
}

TEST_F(ServerTest, WatchFromResourceVersionStreamsChunkedEvents) {
  const std::string from = rv_now();
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  WatchStream watch(port(), "/api/v1/namespaces/default/pods?watch=true&resourceVersion=" + from);
  EXPECT_EQ(watch.status(), 200);
  EXPECT_EQ(watch.headers().at("transfer-encoding"), "chunked");
  EXPECT_EQ(watch.headers().at("content-type"), "application/json");
  auto event = watch.next();
  ASSERT_TRUE(event);
  EXPECT_EQ((*event)["type"], "ADDED");
  EXPECT_EQ((*event)["object"]["kind"], "Pod");

  patch("/api/v1/namespaces/default/pods/a/status", {{"status", {{"phase", "Running"}}}},
        "application/merge-patch+json");
  http_call(port(), {"DELETE", "/api/v1/namespaces/default/pods/a", "", "", {}});
  http_call(port(), {"DELETE",
                     "/api/v1/namespaces/default/pods/a",
                     R"({"gracePeriodSeconds":0})",
                     "application/json",
                     {}});
  std::vector<std::string> types;
  for (int i = 0; i < 4; ++i) {
    event = watch.next();
    ASSERT_TRUE(event);
    types.push_back((*event)["type"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"MODIFIED", "MODIFIED", "MODIFIED", "DELETED"}));
  EXPECT_EQ((*event)["object"]["metadata"]["resourceVersion"], rv_now());
}

TEST_F(ServerTest, WatchWithFieldSelectorSeesOnlyItsNode) {
  WatchStream watch(
      port(),
      "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode-x&resourceVersion=" + rv_now());
  post("/api/v1/namespaces/default/pods", pod_json("elsewhere", "node-y"));
  post("/api/v1/namespaces/default/pods", pod_json("mine", "node-x"));
  const auto event = watch.next();
  ASSERT_TRUE(event);
  EXPECT_EQ((*event)["object"]["metadata"]["name"], "mine");
}

TEST_F(ServerTest, BadSelectorOnWatchIsAPlain400) {
  const auto result = http_get(port(), "/api/v1/pods?watch=1&fieldSelector=spec.foo%3Dbar");
  EXPECT_EQ(result.status, 400);
}

TEST_F(ServerTest, WatchTimeoutEndsWithABookmark) {
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  WatchStream watch(
      port(),
      "/api/v1/pods?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=" + rv_now());
  const auto events = watch.until([](const json&) { return false; });
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0]["type"], "BOOKMARK");
  EXPECT_EQ(events[0]["object"]["kind"], "Pod");
  EXPECT_EQ(events[0]["object"]["metadata"]["resourceVersion"], rv_now());
  EXPECT_TRUE(watch.ended());
}

TEST_F(ServerTest, WatchWithoutResourceVersionSendsStateThenInitialEventsEnd) {
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  WatchStream watch(port(), "/api/v1/pods?watch=1&allowWatchBookmarks=true");
  const auto added = watch.next();
  ASSERT_TRUE(added);
  EXPECT_EQ((*added)["type"], "ADDED");
  const auto bookmark = watch.next();
  ASSERT_TRUE(bookmark);
  EXPECT_EQ((*bookmark)["type"], "BOOKMARK");
  EXPECT_EQ((*bookmark)["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

TEST_F(ServerTest, DropWatchersEndsStreams) {
  WatchStream watch(port(), "/api/v1/pods?watch=1&resourceVersion=" + rv_now());
  EXPECT_EQ(watch.status(), 200);
  server_.drop_watchers();
  EXPECT_FALSE(watch.next());
}

TEST_F(ServerTest, ExpireHistoryGivesGoneToOlderWatches) {
  const std::string old_rv = rv_now();
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  server_.expire_history();
  WatchStream old_watch(port(), "/api/v1/pods?watch=1&resourceVersion=" + old_rv);
  const auto error = old_watch.next();
  ASSERT_TRUE(error);
  EXPECT_EQ((*error)["type"], "ERROR");
  EXPECT_EQ((*error)["object"]["code"], 410);
  EXPECT_FALSE(old_watch.next());

  WatchStream fresh(port(), "/api/v1/pods?watch=1&resourceVersion=" + rv_now());
  post("/api/v1/namespaces/default/pods", pod_json("b"));
  const auto added = fresh.next();
  ASSERT_TRUE(added);
  EXPECT_EQ((*added)["type"], "ADDED");
}

TEST_F(ServerTest, WatchListSendsInitialEventsThenAnnotatedBookmark) {
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  WatchStream watch(port(),
                    "/api/v1/pods?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"
                    "&resourceVersionMatch=NotOlderThan&resourceVersion=0");
  const auto events = watch.until([](const json& e) { return e["type"] == "BOOKMARK"; });
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0]["type"], "ADDED");
  EXPECT_EQ(events[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
  EXPECT_EQ(events[1]["object"]["metadata"]["resourceVersion"], rv_now());
  EXPECT_EQ(
      http_get(port(), "/api/v1/pods?watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=0")
          .status,
      422);
}

TEST_F(ServerTest, ManyConcurrentWatchersEachSeeEveryUpdateInOrder) {
  constexpr int kWatchers = 30;
  constexpr int kUpdates = 200;
  post("/api/v1/namespaces/default/pods", pod_json("a"));
  std::vector<std::unique_ptr<WatchStream>> watches;
  for (int i = 0; i < kWatchers; ++i) {
    watches.push_back(std::make_unique<WatchStream>(
        port(), "/api/v1/namespaces/default/pods?watch=1&resourceVersion=" + rv_now()));
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      std::string key = "w";
      key += std::to_string(w);
      for (int i = 0; i < kUpdates / 2; ++i) {
        server_.store().patch(resource_by_name("pods"), "default", "a", PatchType::kMerge,
                              {{"metadata", {{"labels", {{key, std::to_string(i)}}}}}});
      }
    });
  }
  for (auto& t : writers) t.join();
  for (auto& watch : watches) {
    std::uint64_t last_rv = 0;
    int seen = 0;
    watch->until([&](const json& e) {
      const auto rv = std::stoull(e["object"]["metadata"]["resourceVersion"].get<std::string>());
      EXPECT_EQ(e["type"], "MODIFIED");
      EXPECT_GT(rv, last_rv);
      last_rv = rv;
      return ++seen == kUpdates;
    });
    EXPECT_EQ(seen, kUpdates);
  }
}

TEST(ServerBookmarks, PeriodicBookmarks) {
  ServerOptions options;
  options.bookmark_interval = std::chrono::milliseconds(20);
  Server server(options);
  server.start();
  WatchStream watch(server.port(),
                    "/api/v1/nodes?watch=1&allowWatchBookmarks=true&resourceVersion=" +
                        std::to_string(server.store().current_resource_version()));
  for (int i = 0; i < 3; ++i) {
    const auto event = watch.next();
    ASSERT_TRUE(event);
    EXPECT_EQ((*event)["type"], "BOOKMARK");
  }
}

TEST(ServerSlowWatcher, SlowWatcherIsClosedWithoutBlockingOthers) {
  ServerOptions options;
  options.watch_queue_limit = 50;
  Server server(options);
  server.start();
  const auto& configmaps = resource_by_name("configmaps");
  const std::string from = std::to_string(server.store().current_resource_version());
  const std::string target =
      "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=" + from;
  WatchStream slow(server.port(), target, std::chrono::seconds(20), 4096);
  ASSERT_EQ(slow.status(), 200);
  WatchStream fast(server.port(), target);
  ASSERT_EQ(fast.status(), 200);

  // The producer waits (on an event, not a clock) for the fast watcher to catch up after each
  // batch, so only the slow watcher can ever have more than a batch queued.
  constexpr int kObjects = 3000;
  constexpr int kBatch = 20;
  std::mutex mutex;
  std::condition_variable caught_up;
  int fast_events = 0;
  std::thread reader([&] {
    try {
      fast.until([&](const json&) {
        std::lock_guard lock(mutex);
        ++fast_events;
        caught_up.notify_all();
        return fast_events == kObjects;
      });
    } catch (const std::exception& e) {
      ADD_FAILURE() << "fast watcher: " << e.what();
    }
  });
  const std::string payload(8192, 'x');
  for (int i = 0; i < kObjects; ++i) {
    std::string name = "cm-";
    name += std::to_string(i);
    server.store().create(configmaps, "default",
                          {{"metadata", {{"name", name}}}, {"data", {{"blob", payload}}}});
    if ((i + 1) % kBatch == 0) {
      std::unique_lock lock(mutex);
      const bool ok =
          caught_up.wait_for(lock, std::chrono::seconds(20), [&] { return fast_events == i + 1; });
      if (!ok) {
        ADD_FAILURE() << "the fast watcher stalled at " << fast_events << " events";
        break;
      }
    }
  }
  reader.join();
  EXPECT_EQ(fast_events, kObjects);

  // The slow watcher got what fit into its socket, then an ERROR, then the end of the stream.
  std::size_t slow_events = 0;
  std::optional<json> last;
  while (auto event = slow.next()) {
    ++slow_events;
    last = event;
  }
  ASSERT_TRUE(last);
  EXPECT_EQ((*last)["type"], "ERROR");
  EXPECT_EQ((*last)["object"]["kind"], "Status");
  EXPECT_LT(slow_events, static_cast<std::size_t>(kObjects));
}

TEST(ServerLifecycle, StopClosesOpenConnections) {
  auto server = std::make_unique<Server>(ServerOptions{});
  server->start();
  WatchStream watch(server->port(), "/api/v1/pods?watch=1&resourceVersion=" +
                                        std::to_string(server->store().current_resource_version()));
  EXPECT_EQ(watch.status(), 200);
  server->stop();
  EXPECT_FALSE(watch.next());
  server.reset();
}

}  // namespace
}  // namespace edgehub::devapi

namespace edgehub::devapi {
namespace {

// The optional request log: one JSON line per resource request, the verb as RBAC names it.
TEST(ServerRequestLog, OneLinePerResourceRequestWithItsRbacVerb) {
  const auto path = ::testing::TempDir() + "devapi-request-log-" + std::to_string(::getpid());
  std::remove(path.c_str());
  ServerOptions options;
  options.request_log = path;
  Server server(options);
  server.start();
  const auto port = server.port();
  const auto pod = pod_json("web").dump();
  http_get(port, "/version");  // discovery: not a resource request
  http_call(port, {"POST", "/api/v1/namespaces/default/pods", pod, "application/json", {}});
  http_get(port, "/api/v1/namespaces/default/pods/web");
  http_get(port, "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode-x");
  http_call(port, {"PATCH", "/api/v1/namespaces/default/pods/web/status",
                   R"({"status":{"phase":"Running"}})", "application/merge-patch+json", {}});
  http_call(port, {"DELETE", "/api/v1/namespaces/default/pods", "", "", {}});
  http_get(port, "/api/v1/pods?watch=true&timeoutSeconds=1");
  server.stop();

  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    const auto j = json::parse(line);
    lines.push_back(j["verb"].get<std::string>() + " " + j["resource"].get<std::string>() +
                    (j["subresource"] == "" ? "" : "/" + j["subresource"].get<std::string>()) +
                    " " + j["namespace"].get<std::string>() + " " + j["name"].get<std::string>());
  }
  EXPECT_EQ(lines, (std::vector<std::string>{
                       "create pods default ", "get pods default web", "list pods  ",
                       "patch pods/status default web", "deletecollection pods default ",
                       "watch pods  "}));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace edgehub::devapi

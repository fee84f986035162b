// The client's HTTP handling against a loopback server that replays recorded answers.

#include "replay_server.hpp"
#include "sample_files.hpp"
#include "temp_dir.hpp"

#include <edgehub/kube/client.hpp>
#include <edgehub/version.hpp>

#include <gtest/gtest.h>

namespace edgehub::kube {
namespace {

namespace net = boost::asio;
using testing::await;
using testing::Recorded;
using testing::ReplayServer;
using testing::Reply;

ClientConfig http_config(const ReplayServer& server, std::string token = "tok") {
  ClientConfig cfg;
  cfg.origin = "test";
  EXPECT_TRUE(cfg.set_server(server.url(), "server"));
  cfg.token = TokenSource::fixed(std::move(token));
  return cfg;
}

std::shared_ptr<Client> make_client(net::io_context& io, ClientConfig cfg, ClientOptions opt = {}) {
  auto c = Client::make(io.get_executor(), std::move(cfg), opt);
  EXPECT_TRUE(c) << c.error().describe();
  return *c;
}

Reply sample_reply(const testing::Sample& s) {
  Reply r;
  r.status = s.status;
  r.body = s.body;
  return r;
}

TEST(KubeClient, GetSendsHeadersAndDecodes) {
  net::io_context io;
  auto pod = testing::load_sample("v1.36.3", "get-pod-a");
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(pod); });
  auto client = make_client(io, http_config(server));
  auto r = await(io, client->get(resources::pods(), "default", "pod-a"));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->meta.name, "pod-a");
  EXPECT_EQ(r->raw, pod.body);
  ASSERT_EQ(server.requests.size(), 1u);
  const auto& rec = server.requests[0];
  EXPECT_EQ(rec.method, "GET");
  EXPECT_EQ(rec.target, "/api/v1/namespaces/default/pods/pod-a");
  EXPECT_EQ(rec.authorization, "Bearer tok");
  EXPECT_EQ(rec.user_agent, std::string("edgehub/") + kVersion);
  EXPECT_EQ(rec.accept, "application/json");
}

TEST(KubeClient, ConcurrentRequestsShareThePool) {
  net::io_context io;
  auto pod = testing::load_sample("v1.36.3", "get-pod-a");
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(pod); });
  ClientOptions opt;
  opt.max_idle_connections = 4;
  auto client = make_client(io, http_config(server), opt);
  int ok = 0;
  for (int i = 0; i < 20; ++i) {
    net::co_spawn(io, client->get(resources::pods(), "default", "pod-a"),
                  [&](std::exception_ptr, Result<Object> r) { ok += r ? 1 : 0; });
  }
  ASSERT_TRUE(testing::run_until(io, [&] { return ok == 20; }));
  EXPECT_LE(client->connections_opened(), 20u);
  EXPECT_EQ(client->idle_connections(), 4u);
  // Later requests reuse idle connections.
  auto opened = client->connections_opened();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(await(io, client->get(resources::pods(), "default", "pod-a")));
  EXPECT_EQ(client->connections_opened(), opened);

  auto raw = await(io, client->request("GET", "/version"));
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->status, 200);
  EXPECT_EQ(raw->body, pod.body);
  auto bad = await(io, client->request("FROB", "/"));
  ASSERT_FALSE(bad);
}

TEST(KubeClient, EveryErrorSampleBecomesTypedErrorOnOneKeptAliveConnection) {
  net::io_context io;
  std::vector<testing::Sample> errors;
  for (auto& s : testing::all_samples()) {
    if (s.status / 100 != 2) errors.push_back(s);
  }
  ASSERT_FALSE(errors.empty());
  std::size_t next = 0;
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(errors[next]); });
  auto client = make_client(io, http_config(server));
  for (; next < errors.size(); ++next) {
    const auto& s = errors[next];
    SCOPED_TRACE(s.version + "/" + s.name);
    auto r = await(io, client->get(resources::pods(), "default", "x"));
    ASSERT_FALSE(r);
    auto ref = nlohmann::json::parse(s.body);
    EXPECT_EQ(r.error().http_status, s.status);
    EXPECT_EQ(r.error().reason, ref["reason"].get<std::string>());
    EXPECT_EQ(r.error().message, ref["message"].get<std::string>());
  }
  EXPECT_EQ(server.connections, 1u);
  EXPECT_EQ(client->connections_opened(), 1u);
}

TEST(KubeClient, NonStatusBodyAndRetryAfter) {
  net::io_context io;
  ReplayServer server(io, [&](const Recorded& rec) {
    Reply r;
    if (rec.target.find("busy") != std::string::npos) {
      r.status = 429;
      r.headers = {{"Retry-After", "4"}};
      r.body = R"({"kind":"Status","status":"Failure","reason":"TooManyRequests","message":"slow","code":429})";
    } else {
      r.status = 502;
      r.headers = {{"Content-Type", "text/html"}};
      r.body = "<html>Bad Gateway</html>";
    }
    return r;
  });
  auto client = make_client(io, http_config(server));
  auto r = await(io, client->get(resources::pods(), "default", "x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::UnexpectedStatus);
  EXPECT_EQ(r.error().http_status, 502);
  EXPECT_NE(r.error().message.find("Bad Gateway"), std::string::npos);
  auto b = await(io, client->get(resources::pods(), "default", "busy"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().kind, ErrorKind::TooManyRequests);
  ASSERT_TRUE(b.error().retry_after);
  EXPECT_EQ(b.error().retry_after->count(), 4);
}

TEST(KubeClient, ReconnectsAfterServerClosesKeptAliveConnection) {
  net::io_context io;
  auto pod = testing::load_sample("v1.26.5", "get-pod-a");
  int n = 0;
  ReplayServer server(io, [&](const Recorded&) {
    Reply r = sample_reply(pod);
    ++n;
    if (n == 1) r.silent_close_after = true;  // stale keep-alive: the client must retry
    if (n == 2) r.close = true;               // explicit Connection: close
    return r;
  });
  auto client = make_client(io, http_config(server));
  for (int i = 0; i < 3; ++i) {
    auto r = await(io, client->get(resources::pods(), "default", "pod-a"));
    ASSERT_TRUE(r) << i << ": " << r.error().describe();
  }
  EXPECT_EQ(server.connections, 3u);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(client->idle_connections(), 1u);
}

TEST(KubeClient, ListPagingAndQuery) {
  net::io_context io;
  auto p1 = testing::load_sample("v1.36.3", "list-pods-limit1");
  auto p2 = testing::load_sample("v1.36.3", "list-pods-limit1-continue");
  ReplayServer server(io, [&](const Recorded& rec) {
    return sample_reply(rec.target.find("continue=") == std::string::npos ? p1 : p2);
  });
  auto client = make_client(io, http_config(server));
  ListOptions opt;
  opt.limit = 1;
  opt.field_selector = "spec.nodeName!=";
  opt.label_selector = "app in (a,b)";
  auto all = await(io, client->list_all(resources::pods(), "", opt));
  ASSERT_TRUE(all) << all.error().describe();
  ASSERT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->items[0].meta.name, "pod-a");
  EXPECT_EQ(all->items[1].meta.name, "pod-b");
  ASSERT_EQ(server.requests.size(), 2u);
  EXPECT_EQ(server.requests[0].target,
            "/api/v1/pods?labelSelector=app%20in%20%28a%2Cb%29&fieldSelector=spec.nodeName%21%3D&limit=1");
  auto token = decode_list(p1.body)->continue_token;
  EXPECT_NE(server.requests[1].target.find("&continue=" + url_encode(token)), std::string::npos);

  ListOptions exact;
  exact.resource_version = "2";
  exact.resource_version_match = "Exact";
  auto gone = testing::load_sample("v1.36.3", "list-exact-compacted-410");
  ReplayServer s410(io, [&](const Recorded&) { return sample_reply(gone); });
  auto c410 = make_client(io, http_config(s410));
  auto r = await(io, c410->list(resources::pods(), "", exact));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Gone);
  EXPECT_EQ(s410.requests[0].target, "/api/v1/pods?resourceVersion=2&resourceVersionMatch=Exact");
}

TEST(KubeClient, WritesUseTheRightVerbsPathsAndContentTypes) {
  net::io_context io;
  auto lease = testing::load_sample("v1.36.3", "node-lease-create");
  ReplayServer server(io, [&](const Recorded&) {
    Reply r = sample_reply(lease);
    r.status = 200;
    return r;
  });
  auto client = make_client(io, http_config(server));
  auto leases = resources::leases();
  ASSERT_TRUE(await(io, client->create(leases, "kube-node-lease", R"({"kind":"Lease"})")));
  RequestOptions upd;
  upd.resource_version = "42";
  upd.priority = Priority::Lease;
  ASSERT_TRUE(await(io, client->update(leases, "kube-node-lease", "node-a",
                                       R"({"kind":"Lease","metadata":{"name":"node-a"}})", upd)));
  ASSERT_TRUE(await(io, client->patch(leases, "kube-node-lease", "node-a", PatchType::Merge, "{}")));
  ASSERT_TRUE(await(io, client->patch_status(resources::nodes(), "", "node-x",
                                             PatchType::StrategicMerge, "{}")));
  ASSERT_TRUE(await(io, client->update_status(resources::pods(), "default", "p", "{}")));
  ASSERT_TRUE(await(io, client->patch(resources::pods(), "default", "p", PatchType::Json, "[]")));
  DeleteOptions del;
  del.grace_period_seconds = 0;
  del.precondition_uid = "u-1";
  del.precondition_resource_version = "9";
  ASSERT_TRUE(await(io, client->remove(resources::pods(), "default", "p", del)));
  ASSERT_TRUE(await(io, client->create_token("default", "sa", R"({"kind":"TokenRequest"})")));
  ASSERT_TRUE(await(io, client->get(resources::devices(), "dev", "d1")));
  ASSERT_TRUE(await(io, client->get(resources::nodesyncs(), "", "edge-1")));

  auto& q = server.requests;
  ASSERT_EQ(q.size(), 10u);
  EXPECT_EQ(q[0].method + " " + q[0].target, "POST /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases");
  EXPECT_EQ(q[0].content_type, "application/json");
  EXPECT_EQ(q[1].method + " " + q[1].target,
            "PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a");
  EXPECT_EQ(nlohmann::json::parse(q[1].body)["metadata"]["resourceVersion"], "42");
  EXPECT_EQ(q[2].method, "PATCH");
  EXPECT_EQ(q[2].content_type, "application/merge-patch+json");
  EXPECT_EQ(q[3].method + " " + q[3].target, "PATCH /api/v1/nodes/node-x/status");
  EXPECT_EQ(q[3].content_type, "application/strategic-merge-patch+json");
  EXPECT_EQ(q[4].method + " " + q[4].target, "PUT /api/v1/namespaces/default/pods/p/status");
  EXPECT_EQ(q[5].content_type, "application/json-patch+json");
  EXPECT_EQ(q[6].method + " " + q[6].target, "DELETE /api/v1/namespaces/default/pods/p");
  auto body = nlohmann::json::parse(q[6].body);
  EXPECT_EQ(body["gracePeriodSeconds"], 0);
  EXPECT_EQ(body["preconditions"]["uid"], "u-1");
  EXPECT_EQ(body["preconditions"]["resourceVersion"], "9");
  EXPECT_EQ(q[7].method + " " + q[7].target, "POST /api/v1/namespaces/default/serviceaccounts/sa/token");
  EXPECT_EQ(q[8].target, "/apis/devices.kubeedge.io/v1beta1/namespaces/dev/devices/d1");
  EXPECT_EQ(q[9].target, "/apis/edgehub.io/v1alpha1/nodesyncs/edge-1");
  EXPECT_EQ(server.connections, 1u);
}

struct Collected {
  std::vector<WatchEvent> events;
  WatchDecoder::Sink sink() {
    return [this](WatchEvent&& e) {
      events.push_back(std::move(e));
      return true;
    };
  }
};

TEST(KubeClient, WatchStreamsChunkedEventsInOrder) {
  auto sample = testing::load_sample("v1.36.3", "watch-pods-all-from-rv");
  for (unsigned seed = 1; seed <= 6; ++seed) {
    net::io_context io;
    ReplayServer server(io, [&](const Recorded&) {
      Reply r;
      r.chunked = true;
      r.chunks = testing::random_chunks(sample.body, seed, seed % 2 ? 13 : 2000);
      return r;
    });
    auto client = make_client(io, http_config(server));
    Collected got;
    WatchOptions opt;
    opt.resource_version = "210";
    opt.timeout_seconds = 20;
    opt.field_selector = "spec.nodeName=node-x";
    auto r = await(io, client->watch(resources::pods(), "default", opt, got.sink()));
    ASSERT_TRUE(r) << r.error().describe();
    std::vector<std::string> types;
    for (auto& e : got.events) types.push_back(std::string(to_string(e.type)));
    EXPECT_EQ(types, (std::vector<std::string>{"ADDED", "ADDED", "MODIFIED", "MODIFIED", "MODIFIED",
                                               "MODIFIED", "DELETED", "BOOKMARK"}));
    EXPECT_EQ(got.events[1].object.meta.name, "pod-b");
    EXPECT_EQ(got.events[7].object.meta.resource_version, "217");
    EXPECT_EQ(server.requests[0].target,
              "/api/v1/namespaces/default/pods?watch=true&fieldSelector=spec.nodeName%3Dnode-x"
              "&resourceVersion=210&allowWatchBookmarks=true&timeoutSeconds=20");
    EXPECT_EQ(client->idle_connections(), 1u);  // clean end: connection reusable
  }
}

TEST(KubeClient, WatchEventsArriveWhileTheStreamStaysOpen) {
  net::io_context io;
  auto live = std::make_shared<testing::LiveStream>(io.get_executor());
  ReplayServer server(io, [&](const Recorded&) {
    Reply r;
    r.live = live;
    return r;
  });
  auto client = make_client(io, http_config(server));
  Collected got;
  std::optional<Result<void>> result;
  net::co_spawn(io, client->watch(resources::pods(), "", {}, got.sink()),
                [&](std::exception_ptr, Result<void> r) { result = std::move(r); });
  live->push(R"({"type":"ADDED","object":{"metadata":{"name":"one","resourceVersion":"1"}}})" "\n");
  ASSERT_TRUE(testing::run_until(io, [&] { return got.events.size() == 1; }));
  // Half an event stays pending until its end arrives.
  live->push(R"({"type":"MODIFIED","object":{"metadata":)");
  live->push(R"({"name":"one","resourceVersion":"2"}}})" "\n");
  ASSERT_TRUE(testing::run_until(io, [&] { return got.events.size() == 2; }));
  EXPECT_FALSE(result);
  EXPECT_EQ(got.events[1].object.meta.resource_version, "2");
  live->finish();
  ASSERT_TRUE(testing::run_until(io, [&] { return result.has_value(); }));
  EXPECT_TRUE(*result);
}

TEST(KubeClient, WatchDroppedMidStreamIsStreamBroken) {
  net::io_context io;
  auto sample = testing::load_sample("v1.26.5", "watch-pods-node-x");
  ReplayServer server(io, [&](const Recorded&) {
    Reply r;
    r.chunked = true;
    // Two whole events and half of the third, then the connection dies.
    auto second_nl = sample.body.find('\n', sample.body.find('\n') + 1);
    r.chunks = {sample.body.substr(0, second_nl + 40)};
    r.end = Reply::End::Drop;
    return r;
  });
  auto client = make_client(io, http_config(server));
  Collected got;
  auto r = await(io, client->watch(resources::pods(), "", {}, got.sink()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::StreamBroken);
  EXPECT_EQ(got.events.size(), 2u);
}

TEST(KubeClient, WatchErrorAnswersAndExpiredEvent) {
  net::io_context io;
  auto refused = testing::load_sample("v1.26.5", "watchlist-pods");
  auto expired = testing::load_sample("v1.36.3", "watch-too-old-rv");
  ReplayServer server(io, [&](const Recorded& rec) {
    if (rec.target.find("sendInitialEvents") != std::string::npos) return sample_reply(refused);
    Reply r;
    r.chunked = true;
    r.chunks = {expired.body};
    return r;
  });
  auto client = make_client(io, http_config(server));
  Collected got;
  WatchOptions wl;
  wl.send_initial_events = true;
  wl.resource_version_match = "NotOlderThan";
  auto r = await(io, client->watch(resources::pods(), "", wl, got.sink()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Invalid);
  EXPECT_EQ(r.error().http_status, 422);

  WatchOptions old;
  old.resource_version = "210";
  auto e = await(io, client->watch(resources::pods(), "", old, got.sink()));
  ASSERT_TRUE(e) << e.error().describe();
  ASSERT_EQ(got.events.size(), 1u);
  EXPECT_EQ(got.events[0].type, EventType::Error);
  EXPECT_EQ(got.events[0].error->kind, ErrorKind::Gone);
}

TEST(KubeClient, WatchIdleTimeout) {
  net::io_context io;
  ReplayServer server(io, [&](const Recorded&) {
    Reply r;
    r.chunked = true;
    r.chunks = {R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"5"}}})" "\n"};
    r.end = Reply::End::Silence;
    return r;
  });
  auto client = make_client(io, http_config(server));
  Collected got;
  WatchOptions opt;
  opt.idle_timeout = std::chrono::milliseconds(100);
  auto r = await(io, client->watch(resources::pods(), "", opt, got.sink()));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::TransportTimeout) << r.error().describe();
  EXPECT_NE(r.error().message.find("timeout"), std::string::npos) << r.error().message;
  EXPECT_LE(got.events.size(), 1u);  // the bookmark, unless the machine stalled past 100 ms
}

TEST(KubeClient, RequestTimeout) {
  net::io_context io;
  ReplayServer server(io, [&](const Recorded&) {
    Reply r;
    r.no_answer = true;
    return r;
  });
  ClientOptions opt;
  opt.request_timeout = std::chrono::milliseconds(100);
  auto client = make_client(io, http_config(server), opt);
  auto r = await(io, client->get(resources::nodes(), "", "n"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::TransportTimeout) << r.error().describe();
}

TEST(KubeClient, ConnectRefused) {
  net::io_context io;
  unsigned short port = 0;
  {
    net::ip::tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  ClientConfig cfg;
  ASSERT_TRUE(cfg.set_server("http://127.0.0.1:" + std::to_string(port), "server"));
  auto client = make_client(io, cfg);
  auto r = await(io, client->get(resources::nodes(), "", "n"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::ConnectFailed);
  EXPECT_NE(r.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

struct Observed {
  std::string verb, resource, error;
  int code = 0;
  std::chrono::steady_clock::duration duration{};
};

RequestObserver observe_into(std::vector<Observed>& out) {
  return [&out](const RequestRecord& r) {
    out.push_back({std::string(r.verb), std::string(r.resource), std::string(r.error), r.code,
                   r.duration});
  };
}

TEST(KubeClient, ObserverSeesVerbResourceAndCodeOfEveryRequest) {
  net::io_context io;
  auto pod = testing::load_sample("v1.36.3", "get-pod-a");
  auto missing = testing::load_sample("v1.36.3", "get-pod-404");
  auto list = testing::load_sample("v1.36.3", "list-pods");
  auto expired = testing::load_sample("v1.36.3", "watch-too-old-rv");
  ReplayServer server(io, [&](const Recorded& rec) {
    if (rec.target.find("watch=") != std::string::npos) {
      Reply r;
      r.chunked = true;
      r.chunks = {expired.body};
      return r;
    }
    if (rec.target.find("/pods/gone") != std::string::npos) return sample_reply(missing);
    if (rec.method == "GET" && rec.target.find("/pods?") != std::string::npos) return sample_reply(list);
    return sample_reply(pod);
  });
  std::vector<Observed> seen;
  ClientOptions opt;
  opt.on_request = observe_into(seen);
  auto client = make_client(io, http_config(server), opt);
  ASSERT_TRUE(await(io, client->get(resources::pods(), "default", "pod-a")));
  ASSERT_FALSE(await(io, client->get(resources::pods(), "default", "gone")));
  ListOptions by_label;
  by_label.label_selector = "app=x";
  ASSERT_TRUE(await(io, client->list(resources::pods(), "default", by_label)));
  ASSERT_TRUE(await(io, client->patch_status(resources::nodes(), "", "n", PatchType::Merge, "{}")));
  ASSERT_TRUE(await(io, client->create_token("default", "sa", "{}")));
  ASSERT_TRUE(await(io, client->request("GET", "/version")));
  Collected got;
  WatchOptions from;
  from.resource_version = "210";
  ASSERT_TRUE(await(io, client->watch(resources::pods(), "", from, got.sink())));

  ASSERT_EQ(seen.size(), 7u);
  auto row = [](const Observed& o) {
    return o.verb + " " + o.resource + " " + (o.code != 0 ? std::to_string(o.code) : o.error);
  };
  EXPECT_EQ(row(seen[0]), "get pods 200");
  EXPECT_EQ(row(seen[1]), "get pods 404");
  EXPECT_EQ(row(seen[2]), "list pods 200");
  EXPECT_EQ(row(seen[3]), "patch nodes/status 200");
  EXPECT_EQ(row(seen[4]), "create serviceaccounts/token 200");
  EXPECT_EQ(row(seen[5]), "get  200");
  EXPECT_EQ(row(seen[6]), "watch pods 200");
  for (const auto& o : seen) {
    EXPECT_TRUE(o.error.empty()) << row(o);
    EXPECT_GT(o.duration.count(), 0) << row(o);
  }
}

TEST(KubeClient, ObserverNamesTransportFailures) {
  net::io_context io;
  unsigned short port = 0;
  {
    net::ip::tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  ClientConfig cfg;
  ASSERT_TRUE(cfg.set_server("http://127.0.0.1:" + std::to_string(port), "server"));
  std::vector<Observed> seen;
  ClientOptions opt;
  opt.on_request = observe_into(seen);
  auto client = make_client(io, cfg, opt);
  ASSERT_FALSE(await(io, client->remove(resources::pods(), "default", "p")));
  Collected got;
  WatchOptions any;
  ASSERT_FALSE(await(io, client->watch(resources::nodes(), "", any, got.sink())));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].verb, "delete");
  EXPECT_EQ(seen[0].resource, "pods");
  EXPECT_EQ(seen[0].code, 0);
  EXPECT_EQ(seen[0].error, "ConnectFailed");
  EXPECT_EQ(seen[1].verb, "watch");
  EXPECT_EQ(seen[1].resource, "nodes");
  EXPECT_EQ(seen[1].error, "ConnectFailed");
}

TEST(KubeClient, TlsAgainstPlainServerIsTlsFailure) {
  net::io_context io;
  ReplayServer server(io, [&](const Recorded&) { return Reply{}; });
  ClientConfig cfg;
  ASSERT_TRUE(cfg.set_server("https://127.0.0.1:" + std::to_string(server.port()), "server"));
  cfg.insecure_skip_tls_verify = true;
  auto client = make_client(io, cfg);
  auto r = await(io, client->get(resources::nodes(), "", "n"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::TlsFailure) << r.error().describe();
}

TEST(KubeClient, BadTlsMaterialIsConfigError) {
  net::io_context io;
  ClientConfig cfg;
  cfg.origin = "kubeconfig /k";
  ASSERT_TRUE(cfg.set_server("https://127.0.0.1:1", "server"));
  cfg.ca_pem = "not a certificate";
  auto c = Client::make(io.get_executor(), cfg);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind, ErrorKind::Config);
  EXPECT_NE(c.error().message.find("kubeconfig /k: certificate-authority"), std::string::npos);
}

TEST(KubeClient, RotatedTokenIsSent) {
  net::io_context io;
  testing::TempDir dir;
  auto path = dir.write("token", "one");
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(testing::load_sample("v1.36.3", "get-node-x")); });
  auto cfg = http_config(server);
  cfg.token = TokenSource::file(path);
  auto client = make_client(io, cfg);
  ASSERT_TRUE(await(io, client->get(resources::nodes(), "", "node-x")));
  dir.write("token", "two-rotated");
  ASSERT_TRUE(await(io, client->get(resources::nodes(), "", "node-x")));
  EXPECT_EQ(server.requests[0].authorization, "Bearer one");
  EXPECT_EQ(server.requests[1].authorization, "Bearer two-rotated");
}

TEST(KubeClient, RateLimitedRequestsWaitAndLeaseGoesFirst) {
  net::io_context io;
  auto node = testing::load_sample("v1.36.3", "get-node-x");
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(node); });
  // A frozen clock: tokens come back only when the test moves it.
  auto now = std::make_shared<RateLimiter::Clock::time_point>();
  ClientOptions opt;
  opt.qps = 200;  // a token every 5 ms of (fake) time
  opt.burst = 1;
  opt.clock = [now] { return *now; };
  auto client = make_client(io, http_config(server), opt);
  std::vector<std::string> done;
  auto run = [&](std::string name, Priority p) -> net::awaitable<void> {
    RequestOptions ro;
    ro.priority = p;
    auto r = co_await client->get(resources::nodes(), "", name, ro);
    EXPECT_TRUE(r);
    done.push_back(name);
  };
  for (int i = 0; i < 3; ++i) net::co_spawn(io, run("bulk" + std::to_string(i), Priority::Bulk), net::detached);
  net::co_spawn(io, run("lease", Priority::Lease), net::detached);
  // One token: bulk0 goes, the others queue; the lease, queued last, is granted first.
  ASSERT_TRUE(testing::run_until(io, [&] { return done.size() == 1 && client->limiter().waiting() == 3; }));
  EXPECT_EQ(client->limiter().waiting(Priority::Lease), 1u);
  *now += std::chrono::milliseconds(5);
  ASSERT_TRUE(testing::run_until(io, [&] { return done.size() == 2; }));
  EXPECT_EQ(done[1], "lease");
  for (std::size_t n = 3; n <= 4; ++n) {  // burst 1: one more token per 5 ms
    *now += std::chrono::milliseconds(5);
    ASSERT_TRUE(testing::run_until(io, [&] { return done.size() == n; }));
  }
  ASSERT_EQ(server.requests.size(), 4u);
  EXPECT_EQ(server.requests[0].target, "/api/v1/nodes/bulk0");
  EXPECT_EQ(server.requests[1].target, "/api/v1/nodes/lease");
  EXPECT_EQ(done, (std::vector<std::string>{"bulk0", "lease", "bulk1", "bulk2"}));
}

// A token that comes back between try_acquire and the queue's first poll is granted inside
// poll(), before the request starts waiting: the request must go, not wait forever.
TEST(KubeClient, ARequestGrantedWhileItIsQueuedIsSent) {
  net::io_context io;
  auto node = testing::load_sample("v1.36.3", "get-node-x");
  ReplayServer server(io, [&](const Recorded&) { return sample_reply(node); });
  // A clock that moves 600 ms at every reading: at 1 qps the token missing at try_acquire is
  // back by the poll that follows the enqueue.
  auto now = std::make_shared<RateLimiter::Clock::time_point>();
  ClientOptions opt;
  opt.qps = 1;
  opt.burst = 1;
  opt.clock = [now] { return *now += std::chrono::milliseconds(600); };
  auto client = make_client(io, http_config(server), opt);
  int done = 0;
  auto run = [&](std::string name) -> net::awaitable<void> {
    auto r = co_await client->get(resources::nodes(), "", name);
    EXPECT_TRUE(r);
    ++done;
  };
  for (int i = 0; i < 3; ++i) net::co_spawn(io, run("node-" + std::to_string(i)), net::detached);
  ASSERT_TRUE(testing::run_until(io, [&] { return done == 3; }))
      << done << " of 3 answered; " << client->limiter().waiting() << " still queued";
  EXPECT_EQ(server.requests.size(), 3u);
}

}  // namespace
}  // namespace edgehub::kube

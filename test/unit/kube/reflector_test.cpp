// Reflector against the replay server: list, watch, bookmark resume, 410 (as an event and as
// HTTP), vanished objects on relist, dropped connections and backoff, clean stop.

#include "replay_server.hpp"
#include "sample_files.hpp"

#include <edgehub/kube/reflector.hpp>

#include <gtest/gtest.h>

#include <deque>

namespace edgehub::kube {
namespace {

namespace net = boost::asio;
using testing::Recorded;
using testing::ReplayServer;
using testing::Reply;

struct Log : ReflectorHandler {
  std::vector<std::string> lines;
  void on_added(const Object& o) override { lines.push_back("added " + o.key() + " " + o.meta.resource_version); }
  void on_modified(const Object& o) override { lines.push_back("modified " + o.key() + " " + o.meta.resource_version); }
  void on_deleted(const Object& o) override {
    lines.push_back("deleted " + o.key() + " " + o.meta.resource_version + (o.raw.empty() ? " (vanished)" : ""));
  }
  void on_resynced(const std::vector<Object>& current) override {
    std::string line = "resynced";
    for (const auto& o : current) {
      line += ' ';
      line += o.key();
    }
    lines.push_back(line);
  }
};

std::string event(std::string_view type, std::string_view name, std::string_view uid, std::string_view rv) {
  return R"({"type":")" + std::string(type) + R"(","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":")" +
         std::string(name) + R"(","namespace":"default","uid":")" + std::string(uid) +
         R"(","resourceVersion":")" + std::string(rv) + R"("},"spec":{"nodeName":"node-x"}}})" + "\n";
}

std::string bookmark(std::string_view rv) {
  return R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":")" +
         std::string(rv) + R"("}}})" + "\n";
}

Reply chunked(std::vector<std::string> chunks, Reply::End end = Reply::End::Finish) {
  Reply r;
  r.chunked = true;
  r.chunks = std::move(chunks);
  r.end = end;
  return r;
}

Reply body(const testing::Sample& s) {
  Reply r;
  r.status = s.status;
  r.body = s.body;
  return r;
}

std::string query_value(const std::string& target, const std::string& key) {
  auto p = target.find(key + "=");
  if (p == std::string::npos) return "<none>";
  auto start = p + key.size() + 1;
  return target.substr(start, target.find('&', start) - start);
}

struct Fixture {
  net::io_context io;
  std::deque<Reply> lists, watches;
  std::vector<std::string> list_targets, watch_targets;
  ReplayServer server{io, [this](const Recorded& rec) {
                        bool is_watch = rec.target.find("watch=true") != std::string::npos;
                        (is_watch ? watch_targets : list_targets).push_back(rec.target);
                        auto& q = is_watch ? watches : lists;
                        if (q.empty()) return chunked({}, Reply::End::Silence);  // nothing scripted: hang
                        Reply r = std::move(q.front());
                        q.pop_front();
                        return r;
                      }};
  std::shared_ptr<Client> client;
  Log log;
  bool stopped = false;
  std::shared_ptr<Reflector> reflector;

  Fixture() {
    ClientConfig cfg;
    EXPECT_TRUE(cfg.set_server(server.url(), "server"));
    ClientOptions copt;
    copt.qps = 0;
    client = *Client::make(io.get_executor(), cfg, copt);
    ReflectorOptions opt;
    opt.resource = resources::pods();
    opt.field_selector = "spec.nodeName!=";
    opt.initial_backoff = std::chrono::milliseconds(1);
    opt.max_backoff = std::chrono::milliseconds(4);
    opt.seed = 7;
    opt.page_size = 1;
    opt.on_stopped = [this] { stopped = true; };
    reflector = Reflector::make(client, opt, log);
  }

  bool run_until_watches(std::size_t n) {
    return testing::run_until(io, [&] { return watch_targets.size() >= n; });
  }
  void stop() {
    reflector->stop();
    ASSERT_TRUE(testing::run_until(io, [&] { return stopped; }));
    EXPECT_FALSE(reflector->running());
  }
};

TEST(KubeReflector, ListWatchBookmarkResumeExpiredRelist) {
  Fixture f;
  auto v = "v1.36.3";
  // First list, in two pages (page_size 1).
  f.lists.push_back(body(testing::load_sample(v, "list-pods-limit1")));
  f.lists.push_back(body(testing::load_sample(v, "list-pods-limit1-continue")));
  // Watch 1: one change and a bookmark, then the server ends the watch normally.
  f.watches.push_back(chunked({event("MODIFIED", "pod-a", "a81c65d4-7e34-4efa-b2e2-5bdcc1f2e89b", "300"),
                               bookmark("305")}));
  // Watch 2 (from the bookmark): too old.
  f.watches.push_back(body(testing::load_sample(v, "watch-too-old-rv")));
  f.watches.back().chunked = true;
  f.watches.back().chunks = {f.watches.back().body};
  // Relist: pod-a is gone.
  f.lists.push_back(body(testing::load_sample(v, "list-pods-after-delete")));
  // Watch 3: pod-c appears, then the connection drops mid-event.
  f.watches.push_back(chunked({event("ADDED", "pod-c", "c-uid", "320"), "{\"type\":\"MODI"}, Reply::End::Drop));
  // Watch 4 (after a backoff, from 320): HTTP 410.
  f.watches.push_back(body(testing::load_sample(v, "list-exact-compacted-410")));
  // Relist: pod-c was replaced under the same name (new uid), pod-b stays.
  auto replaced = nlohmann::json::parse(testing::load_sample(v, "list-pods-after-delete").body);
  nlohmann::json pod_c = replaced["items"][0];
  pod_c["metadata"]["name"] = "pod-c";
  pod_c["metadata"]["uid"] = "c-uid-2";
  pod_c["metadata"]["resourceVersion"] = "400";
  replaced["items"].push_back(pod_c);
  replaced["metadata"]["resourceVersion"] = "401";
  Reply relist2;
  relist2.body = replaced.dump();
  f.lists.push_back(relist2);
  // Watch 5: hangs until stop.

  f.reflector->start();
  ASSERT_TRUE(f.run_until_watches(5));
  f.stop();

  EXPECT_EQ(f.log.lines, (std::vector<std::string>{
                             "resynced default/pod-a default/pod-b",
                             "modified default/pod-a 300",
                             // pod-a vanished while the watch was expired: reported before
                             // the resync, with its last known version.
                             "deleted default/pod-a 300 (vanished)",
                             "resynced default/pod-b",
                             "added default/pod-c 320",
                             "deleted default/pod-c 320 (vanished)",
                             "resynced default/pod-b default/pod-c",
                         }));
  ASSERT_EQ(f.list_targets.size(), 4u);
  EXPECT_EQ(f.list_targets[0], "/api/v1/pods?fieldSelector=spec.nodeName%21%3D&limit=1");
  EXPECT_NE(f.list_targets[1].find("continue="), std::string::npos);
  ASSERT_EQ(f.watch_targets.size(), 5u);
  EXPECT_EQ(query_value(f.watch_targets[0], "resourceVersion"), "214");
  EXPECT_EQ(query_value(f.watch_targets[0], "allowWatchBookmarks"), "true");
  EXPECT_EQ(query_value(f.watch_targets[0], "fieldSelector"), "spec.nodeName%21%3D");
  EXPECT_EQ(query_value(f.watch_targets[1], "resourceVersion"), "305");  // bookmark resume
  EXPECT_EQ(query_value(f.watch_targets[2], "resourceVersion"), "217");  // after relist
  EXPECT_EQ(query_value(f.watch_targets[3], "resourceVersion"), "320");  // resume after drop
  EXPECT_EQ(query_value(f.watch_targets[4], "resourceVersion"), "401");
  const auto& st = f.reflector->stats();
  EXPECT_EQ(st.lists, 3u);
  EXPECT_EQ(st.expired, 2u);
  EXPECT_EQ(st.errors, 1u);
  EXPECT_EQ(st.bookmarks, 1u);
  EXPECT_EQ(f.reflector->size(), 2u);
}

TEST(KubeReflector, RelistDeletesVanishedObjects) {
  Fixture f;
  auto v = "v1.26.5";
  f.reflector = Reflector::make(f.client, [] {
    ReflectorOptions o;
    o.resource = resources::pods();
    o.initial_backoff = std::chrono::milliseconds(1);
    o.seed = 1;
    return o;
  }(), f.log);
  f.lists.push_back(body(testing::load_sample(v, "list-pods")));
  f.watches.push_back(body(testing::load_sample(v, "list-exact-compacted-410")));  // HTTP 410
  f.lists.push_back(body(testing::load_sample(v, "list-pods-after-delete")));
  f.reflector->start();
  ASSERT_TRUE(f.run_until_watches(2));
  f.reflector->stop();
  // on_stopped is not set in this reflector: wait until it is no longer running.
  ASSERT_TRUE(testing::run_until(f.io, [&] { return !f.reflector->running(); }));
  auto after = decode_list(testing::load_sample(v, "list-pods-after-delete").body);
  auto before = decode_list(testing::load_sample(v, "list-pods").body);
  std::string pod_a_rv;
  for (auto& o : before->items) {
    if (o.meta.name == "pod-a") pod_a_rv = o.meta.resource_version;
  }
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"resynced default/pod-a default/pod-b",
                                                   "deleted default/pod-a " + pod_a_rv + " (vanished)",
                                                   "resynced default/pod-b"}));
  EXPECT_EQ(query_value(f.watch_targets[1], "resourceVersion"), after->resource_version);
}

TEST(KubeReflector, FirstListFromCacheRelistFromLatestAndQuietWatchEnds) {
  Fixture f;
  ReflectorOptions o;
  o.resource = resources::nodes();
  o.initial_list_resource_version = "0";
  o.initial_backoff = std::chrono::milliseconds(1);
  o.on_stopped = [&] { f.stopped = true; };
  f.reflector = Reflector::make(f.client, o, f.log);
  f.lists.push_back(body(testing::load_sample("v1.36.3", "list-nodes")));
  f.watches.push_back(chunked({}));  // ends at once without events
  f.watches.push_back(body(testing::load_sample("v1.36.3", "list-exact-compacted-410")));
  f.lists.push_back(body(testing::load_sample("v1.36.3", "list-nodes")));
  f.reflector->start();
  ASSERT_TRUE(f.run_until_watches(3));
  f.stop();
  ASSERT_EQ(f.list_targets.size(), 2u);
  EXPECT_EQ(f.list_targets[0], "/api/v1/nodes?resourceVersion=0&limit=500");
  EXPECT_EQ(f.list_targets[1], "/api/v1/nodes?limit=500");
  EXPECT_EQ(query_value(f.watch_targets[0], "resourceVersion"), "209");
  EXPECT_EQ(query_value(f.watch_targets[1], "resourceVersion"), "209");
  EXPECT_EQ(f.reflector->stats().errors, 0u);
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"resynced node-x node-y", "resynced node-x node-y"}));
}

TEST(KubeReflector, ListErrorsBackOffAndRetry) {
  Fixture f;
  f.lists.push_back(body(testing::load_sample("v1.36.3", "forbidden-403")));
  Reply busy;
  busy.status = 503;
  busy.body = "upstream unavailable";
  f.lists.push_back(busy);
  f.lists.push_back(body(testing::load_sample("v1.36.3", "list-pods-empty")));
  f.reflector->start();
  ASSERT_TRUE(f.run_until_watches(1));
  f.stop();
  EXPECT_EQ(f.list_targets.size(), 3u);
  EXPECT_EQ(f.reflector->stats().errors, 2u);
  EXPECT_EQ(f.log.lines, (std::vector<std::string>{"resynced"}));
}

TEST(KubeReflector, StopBeforeAnyAnswerAndNoCallbacksAfterStop) {
  Fixture f;
  f.reflector->start();
  ASSERT_TRUE(testing::run_until(f.io, [&] { return f.list_targets.size() == 1; }));  // list hangs
  f.stop();
  EXPECT_TRUE(f.log.lines.empty());
}

TEST(KubeBackoff, GrowsWithJitterUpToMax) {
  Backoff b(std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 42);
  std::int64_t cap = 100;
  for (int i = 0; i < 10; ++i) {
    auto d = b.next().count();
    EXPECT_GE(d, cap / 2) << i;
    EXPECT_LE(d, cap) << i;
    cap = std::min<std::int64_t>(cap * 2, 1000);
  }
  b.reset();
  EXPECT_LE(b.next().count(), 100);
}

}  // namespace
}  // namespace edgehub::kube

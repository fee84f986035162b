// The client and the Reflector against the real embedded API server (devapi) on port 0.

#include "replay_server.hpp"
#include "temp_dir.hpp"

#include <edgehub/devapi/server.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/reflector.hpp>

#include <gtest/gtest.h>

#include <algorithm>

namespace edgehub::kube {
namespace {

namespace net = boost::asio;
using testing::await;
using testing::run_until;

class DevApi : public ::testing::Test {
 protected:
  void SetUp() override {
    devapi::ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    server_ = std::make_unique<devapi::Server>(so);
    server_->start();
    server_->write_kubeconfig(dir_.file("kubeconfig"));
    auto cfg = load_kubeconfig(dir_.file("kubeconfig"));
    ASSERT_TRUE(cfg) << cfg.error().describe();
    config_ = *cfg;
    client_ = make(io_);
    other_ = make(io2_);
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  std::shared_ptr<Client> make(net::io_context& io) {
    ClientOptions opt;
    opt.qps = 0;
    auto c = Client::make(io.get_executor(), config_, opt);
    EXPECT_TRUE(c) << c.error().describe();
    return c ? *c : nullptr;
  }

  static std::string configmap(const std::string& name, const std::string& value) {
    return nlohmann::json{{"apiVersion", "v1"},
                          {"kind", "ConfigMap"},
                          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"test", "reflector"}}}}},
                          {"data", {{"k", value}}}}
        .dump();
  }

  testing::TempDir dir_;
  std::unique_ptr<devapi::Server> server_;
  ClientConfig config_;
  net::io_context io_, io2_;
  std::shared_ptr<Client> client_, other_;
};

TEST_F(DevApi, KubeconfigAndVerbs) {
  auto cms = resources::configmaps();
  auto a = await(io_, client_->create(cms, "default", configmap("cm-a", "1")));
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->meta.name, "cm-a");
  EXPECT_FALSE(a->meta.uid.empty());

  auto again = await(io_, client_->create(cms, "default", configmap("cm-a", "1")));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::AlreadyExists);

  RequestOptions upd;
  upd.resource_version = a->meta.resource_version;
  auto u = await(io_, client_->update(cms, "default", "cm-a", configmap("cm-a", "2"), upd));
  ASSERT_TRUE(u) << u.error().describe();
  EXPECT_EQ(u->json()["data"]["k"], "2");
  auto stale = await(io_, client_->update(cms, "default", "cm-a", configmap("cm-a", "3"), upd));
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().kind, ErrorKind::Conflict) << stale.error().describe();

  auto p = await(io_, client_->patch(cms, "default", "cm-a", PatchType::Merge, R"({"data":{"k":"4"}})"));
  ASSERT_TRUE(p) << p.error().describe();
  EXPECT_EQ(p->json()["data"]["k"], "4");

  auto g = await(io_, client_->get(cms, "default", "cm-a"));
  ASSERT_TRUE(g);
  EXPECT_EQ(g->meta.resource_version, p->meta.resource_version);

  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("page-" + std::to_string(i), "x"))));
  }
  ListOptions lo;
  lo.limit = 2;
  lo.label_selector = "test=reflector";
  auto all = await(io_, client_->list_all(cms, "default", lo));
  ASSERT_TRUE(all) << all.error().describe();
  EXPECT_EQ(all->items.size(), 6u);

  auto d = await(io_, client_->remove(cms, "default", "cm-a"));
  ASSERT_TRUE(d) << d.error().describe();
  auto missing = await(io_, client_->get(cms, "default", "cm-a"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::NotFound);

  auto node = await(io_, client_->create(resources::nodes(), "",
                                         R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"edge-1"}})"));
  ASSERT_TRUE(node) << node.error().describe();
  auto st = await(io_, client_->patch_status(resources::nodes(), "", "edge-1", PatchType::Merge,
                                             R"({"status":{"phase":"Running"}})"));
  ASSERT_TRUE(st) << st.error().describe();
  EXPECT_EQ(st->json()["status"]["phase"], "Running");
}

struct Log : ReflectorHandler {
  std::vector<std::string> lines;
  void on_added(const Object& o) override { lines.push_back("added " + o.key()); }
  void on_modified(const Object& o) override { lines.push_back("modified " + o.key() + " " + o.json()["data"]["k"].get<std::string>()); }
  void on_deleted(const Object& o) override {
    lines.push_back("deleted " + o.key() + (o.raw.empty() ? " (vanished)" : ""));
  }
  void on_resynced(const std::vector<Object>& current) override {
    std::vector<std::string> names;
    for (const auto& o : current) names.push_back(o.key());
    std::sort(names.begin(), names.end());
    std::string line = "resynced";
    for (const auto& n : names) {
      line += ' ';
      line += n;
    }
    lines.push_back(line);
  }
  bool has(const std::string& l) const { return std::find(lines.begin(), lines.end(), l) != lines.end(); }
  std::size_t count(const std::string& l) const { return static_cast<std::size_t>(std::count(lines.begin(), lines.end(), l)); }
};

TEST_F(DevApi, ReflectorFollowsChangesResumesAndRelists) {
  auto cms = resources::configmaps();
  ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("before", "0"))));
  Log log;
  bool stopped = false;
  ReflectorOptions ro;
  ro.resource = cms;
  ro.namespace_ = "default";
  ro.label_selector = "test=reflector";
  ro.initial_backoff = std::chrono::milliseconds(1);
  ro.max_backoff = std::chrono::milliseconds(10);
  ro.on_stopped = [&] { stopped = true; };
  auto reflector = Reflector::make(client_, ro, log);
  reflector->start();
  ASSERT_TRUE(run_until(io_, [&] { return log.has("resynced default/before"); }));

  // Live changes arrive as events, in order.
  ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("a", "1"))));
  ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("b", "1"))));
  ASSERT_TRUE(await(io_, client_->patch(cms, "default", "a", PatchType::Merge, R"({"data":{"k":"2"}})")));
  ASSERT_TRUE(await(io_, client_->remove(cms, "default", "b")));
  ASSERT_TRUE(run_until(io_, [&] { return log.has("deleted default/b"); }))
      << ::testing::PrintToString(log.lines) << " watches=" << reflector->stats().watches
      << " errors=" << reflector->stats().errors << " events=" << reflector->stats().events;
  EXPECT_EQ(log.lines, (std::vector<std::string>{"resynced default/before", "added default/a", "added default/b",
                                                 "modified default/a 2", "deleted default/b"}));

  // The server drops the watch: the reflector resumes from its resourceVersion, no relist,
  // no replayed events.
  auto watches = reflector->stats().watches;
  server_->drop_watchers();
  ASSERT_TRUE(run_until(io_, [&] { return reflector->stats().watches > watches; }));
  ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("c", "1"))));
  ASSERT_TRUE(run_until(io_, [&] { return log.has("added default/c"); }));
  EXPECT_EQ(log.count("added default/a"), 1u);
  EXPECT_EQ(reflector->stats().lists, 1u);

  // While the reflector is not running, its watch is dropped, "a" is deleted and the history
  // expires: the resumed watch gets 410, the relist reports "a" as vanished.
  server_->drop_watchers();
  ASSERT_TRUE(await(io2_, other_->remove(cms, "default", "a")));
  server_->expire_history();
  ASSERT_TRUE(run_until(io_, [&] { return log.has("resynced default/before default/c"); }));
  EXPECT_TRUE(log.has("deleted default/a (vanished)"));
  EXPECT_GE(reflector->stats().expired, 1u);
  EXPECT_EQ(reflector->stats().lists, 2u);
  EXPECT_EQ(reflector->size(), 2u);

  // And it keeps following.
  ASSERT_TRUE(await(io_, client_->create(cms, "default", configmap("d", "1"))));
  ASSERT_TRUE(run_until(io_, [&] { return log.has("added default/d"); }));

  reflector->stop();
  ASSERT_TRUE(run_until(io_, [&] { return stopped; }));
}

}  // namespace
}  // namespace edgehub::kube

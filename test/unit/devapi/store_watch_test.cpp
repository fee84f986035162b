// Watch semantics at the store level: replay from a resourceVersion, expiry, selector
// transitions and bookmarks, observed through a recording Watcher.
#include <gtest/gtest.h>

#include <edgehub/devapi/store.hpp>

namespace edgehub::devapi {
namespace {

struct Recorded {
  std::string type;
  std::string name;
  std::uint64_t rv;
};

class Recorder : public Watcher {
 public:
  void deliver(EventType type, const StoreEvent& event) override {
    events.push_back(
        {to_string(type), (*event.object)["metadata"]["name"].get<std::string>(), event.rv});
  }
  void bookmark(std::uint64_t rv, bool end) override {
    events.push_back({end ? "BOOKMARK-END" : "BOOKMARK", "", rv});
  }
  void close() override { closed = true; }
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& e : events) {
      std::string text = e.type;
      if (!e.name.empty()) text.append(":").append(e.name);
      out.push_back(std::move(text));
    }
    return out;
  }
  std::vector<Recorded> events;
  bool closed = false;
};

const ResourceInfo& pods() {
  return resource_by_name("pods");
}
using V = std::vector<std::string>;

json pod(const std::string& name, json labels = json::object()) {
  return {{"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", {{"nodeName", "n"}, {"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}};
}

TEST(StoreWatch, ReplaysHistoryAfterResourceVersionThenStreams) {
  Store store;
  const std::string from = std::to_string(store.current_resource_version());
  store.create(pods(), "default", pod("a"));
  store.patch(pods(), "default", "a", PatchType::kMerge,
              {{"metadata", {{"labels", {{"x", "1"}}}}}});
  auto recorder = std::make_shared<Recorder>();
  WatchOptions options;
  options.resource_version = from;
  store.watch(pods(), options, recorder);
  EXPECT_EQ(recorder->types(), (V{"ADDED:a", "MODIFIED:a"}));
  DeleteOptions force;
  force.grace_period_seconds = 0;
  store.remove(pods(), "default", "a", force);
  EXPECT_EQ(recorder->types(), (V{"ADDED:a", "MODIFIED:a", "MODIFIED:a", "DELETED:a"}));
  for (std::size_t i = 1; i < recorder->events.size(); ++i) {
    EXPECT_GT(recorder->events[i].rv, recorder->events[i - 1].rv);
  }
}

TEST(StoreWatch, WithoutResourceVersionStartsWithCurrentObjects) {
  Store store;
  store.create(pods(), "default", pod("a"));
  store.create(pods(), "other", pod("b"));
  auto recorder = std::make_shared<Recorder>();
  WatchOptions options;
  options.namespace_ = "default";
  options.allow_bookmarks = true;
  store.watch(pods(), options, recorder);
  EXPECT_EQ(recorder->types(), (V{"ADDED:a", "BOOKMARK-END"}));
}

TEST(StoreWatch, BadSelectorsAreBadRequests) {
  Store store;
  WatchOptions options;
  options.label_selector = "a in ((";
  EXPECT_THROW(store.watch(pods(), options, std::make_shared<Recorder>()), ApiError);
  options.label_selector.clear();
  options.field_selector = "spec.foo=bar";
  EXPECT_THROW(store.watch(pods(), options, std::make_shared<Recorder>()), ApiError);
  EXPECT_EQ(store.watcher_count(), 0U);
}

TEST(StoreWatch, ExpiredResourceVersionIsGone) {
  Store store;
  store.create(pods(), "default", pod("a"));
  const std::string old_rv = std::to_string(store.current_resource_version() - 1);
  store.expire_history();
  WatchOptions options;
  options.resource_version = old_rv;
  try {
    store.watch(pods(), options, std::make_shared<Recorder>());
    FAIL() << "expected 410";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), 410);
    EXPECT_EQ(e.reason(), "Expired");
    EXPECT_EQ(std::string(e.what()).rfind("too old resource version: " + old_rv + " (", 0), 0U);
  }
  options.resource_version = std::to_string(store.current_resource_version());
  EXPECT_NO_THROW(store.watch(pods(), options, std::make_shared<Recorder>()));
}

TEST(StoreWatch, HistoryWindowIsBounded) {
  Store store(5);
  const std::string from = std::to_string(store.current_resource_version());
  for (int i = 0; i < 10; ++i) {
    std::string name = "p";
    name += std::to_string(i);
    store.create(pods(), "default", pod(name));
  }
  WatchOptions options;
  options.resource_version = from;
  EXPECT_THROW(store.watch(pods(), options, std::make_shared<Recorder>()), ApiError);
  options.resource_version = std::to_string(store.current_resource_version() - 5);
  auto recorder = std::make_shared<Recorder>();
  store.watch(pods(), options, recorder);
  EXPECT_EQ(recorder->events.size(), 5U);
}

TEST(StoreWatch, ObjectThatStopsMatchingIsDeletedForTheWatcher) {
  Store store;
  store.create(pods(), "default", pod("a", {{"app", "web"}}));
  auto recorder = std::make_shared<Recorder>();
  WatchOptions options;
  options.resource_version = std::to_string(store.current_resource_version());
  options.label_selector = "app=web";
  store.watch(pods(), options, recorder);
  store.patch(pods(), "default", "a", PatchType::kMerge,
              {{"metadata", {{"labels", {{"app", "db"}}}}}});
  store.patch(pods(), "default", "a", PatchType::kMerge,
              {{"metadata", {{"labels", {{"x", "1"}}}}}});
  store.patch(pods(), "default", "a", PatchType::kMerge,
              {{"metadata", {{"labels", {{"app", "web"}}}}}});
  EXPECT_EQ(recorder->types(), (V{"DELETED:a", "ADDED:a"}));
}

TEST(StoreWatch, BookmarksAndCloseReachTheWatcher) {
  Store store;
  auto recorder = std::make_shared<Recorder>();
  WatchOptions options;
  options.resource_version = std::to_string(store.current_resource_version());
  const auto id = store.watch(pods(), options, recorder);
  store.create(resource_by_name("configmaps"), "default", {{"metadata", {{"name", "cm"}}}});
  store.request_bookmark(id);
  ASSERT_EQ(recorder->types(), (V{"BOOKMARK"}));
  EXPECT_EQ(recorder->events[0].rv, store.current_resource_version());
  EXPECT_EQ(store.watcher_count(), 1U);
  store.close_watchers();
  EXPECT_TRUE(recorder->closed);
  EXPECT_EQ(store.watcher_count(), 0U);
}

}  // namespace
}  // namespace edgehub::devapi

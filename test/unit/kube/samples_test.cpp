// Every recorded API server answer must decode: lists to their items, watch streams to their
// events (fed in random chunks), error answers to the right typed error.

#include "sample_files.hpp"

#include <edgehub/kube/error.hpp>
#include <edgehub/kube/object.hpp>
#include <edgehub/kube/watch_decoder.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>
#include <regex>

namespace edgehub::kube {
namespace {

using testing::Sample;

// The README's "events: ADDED BOOKMARK ..." column, per version and sample.
std::map<std::string, std::vector<std::string>> readme_events() {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(testing::slurp(testing::samples_dir() / "README.md"));
  std::string line, version;
  std::regex row(R"(^\| ([a-z0-9-]+) \|.*\| (events: ([A-Z ]+)|\(empty stream\)) \|$)");
  while (std::getline(in, line)) {
    if (line.rfind("## v", 0) == 0) version = line.substr(3);
    std::smatch m;
    if (!version.empty() && std::regex_match(line, m, row)) {
      std::vector<std::string> types;
      std::istringstream ts(m[3].str());
      for (std::string t; ts >> t;) types.push_back(t);
      out[version + "/" + m[1].str()] = types;
    }
  }
  return out;
}

std::vector<std::string> split_lines(const std::string& body) {
  std::vector<std::string> lines;
  std::istringstream in(body);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty()) lines.push_back(l);
  }
  return lines;
}

void check_watch(const Sample& s, const std::vector<std::string>& expected_types) {
  // Reference: nlohmann DOM per line.
  auto lines = split_lines(s.body);
  ASSERT_EQ(lines.size(), expected_types.size());
  for (unsigned seed = 0; seed < 20; ++seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::size_t> chunk(1, seed < 10 ? 7 : 300);
    WatchDecoder dec;
    std::vector<WatchEvent> events;
    auto sink = [&](WatchEvent&& ev) {
      events.push_back(std::move(ev));
      return true;
    };
    std::string_view rest = s.body;
    while (!rest.empty()) {
      auto n = std::min(rest.size(), chunk(rng));
      auto r = dec.feed(rest.substr(0, n), sink);
      ASSERT_TRUE(r) << r.error().describe();
      rest.remove_prefix(n);
    }
    ASSERT_TRUE(dec.finish(sink));
    ASSERT_EQ(events.size(), lines.size()) << "seed " << seed;
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto ref = nlohmann::json::parse(lines[i]);
      const auto& ev = events[i];
      EXPECT_EQ(to_string(ev.type), expected_types[i]);
      EXPECT_EQ(to_string(ev.type), ref["type"].get<std::string>());
      const auto& md = ref["object"]["metadata"];
      EXPECT_EQ(ev.object.meta.name, md.value("name", ""));
      EXPECT_EQ(ev.object.meta.namespace_, md.value("namespace", ""));
      EXPECT_EQ(ev.object.meta.uid, md.value("uid", ""));
      EXPECT_EQ(ev.object.meta.resource_version, md.value("resourceVersion", ""));
      EXPECT_EQ(ev.object.json(), ref["object"]) << "raw object text must be kept verbatim";
      if (ref["object"].contains("spec") && ref["object"]["spec"].is_object()) {
        EXPECT_EQ(ev.object.node_name, ref["object"]["spec"].value("nodeName", ""));
      }
      if (ev.type == EventType::Error) {
        ASSERT_TRUE(ev.error);
        EXPECT_EQ(ev.error->kind, ErrorKind::Gone);
        EXPECT_EQ(ev.error->http_status, 410);
        EXPECT_EQ(ev.error->reason, "Expired");
      } else {
        EXPECT_FALSE(ev.error);
      }
    }
  }
}

void check_list(const Sample& s, const nlohmann::json& ref) {
  auto list = decode_list(s.body);
  ASSERT_TRUE(list) << list.error().describe();
  EXPECT_EQ(list->kind, ref["kind"].get<std::string>());
  EXPECT_EQ(list->resource_version, ref["metadata"].value("resourceVersion", ""));
  EXPECT_EQ(list->continue_token, ref["metadata"].value("continue", ""));
  const auto& items = ref["items"];
  ASSERT_EQ(list->items.size(), items.is_array() ? items.size() : 0u);
  for (std::size_t i = 0; i < list->items.size(); ++i) {
    EXPECT_EQ(list->items[i].meta.name, items[i]["metadata"]["name"].get<std::string>());
    EXPECT_EQ(list->items[i].meta.uid, items[i]["metadata"]["uid"].get<std::string>());
    EXPECT_EQ(list->items[i].json(), items[i]);
  }
  if (ref["metadata"].contains("remainingItemCount")) {
    EXPECT_EQ(list->remaining_item_count, ref["metadata"]["remainingItemCount"].get<long>());
  }
}

ErrorKind expected_kind(int status, const std::string& reason) {
  switch (status) {
    case 400: return ErrorKind::BadRequest;
    case 401: return ErrorKind::Unauthorized;
    case 403: return ErrorKind::Forbidden;
    case 404: return ErrorKind::NotFound;
    case 405: return ErrorKind::MethodNotAllowed;
    case 409: return reason == "AlreadyExists" ? ErrorKind::AlreadyExists : ErrorKind::Conflict;
    case 410: return ErrorKind::Gone;
    case 422: return ErrorKind::Invalid;
    default: return ErrorKind::UnexpectedStatus;
  }
}

TEST(KubeSamples, EveryBodyDecodes) {
  auto samples = testing::all_samples();
  auto events = readme_events();
  ASSERT_GE(samples.size(), 90u);
  std::size_t lists = 0, watches = 0, errors = 0, objects = 0, text = 0;
  for (const auto& s : samples) {
    SCOPED_TRACE(s.version + "/" + s.name + " (" + s.request + ")");
    ASSERT_NE(s.status, 0);
    if (s.status / 100 != 2) {
      auto ref = nlohmann::json::parse(s.body);
      auto e = error_from_response(s.status, s.body);
      EXPECT_EQ(e.http_status, s.status);
      EXPECT_EQ(e.reason, ref["reason"].get<std::string>());
      EXPECT_EQ(e.message, ref["message"].get<std::string>());
      EXPECT_EQ(ref["code"].get<int>(), s.status);
      EXPECT_EQ(e.kind, expected_kind(s.status, e.reason)) << e.describe();
      ++errors;
    } else if (testing::is_watch(s)) {
      auto it = events.find(s.version + "/" + s.name);
      ASSERT_NE(it, events.end()) << "README has no events column for this watch";
      check_watch(s, it->second);
      ++watches;
    } else {
      auto ref = nlohmann::json::parse(s.body, nullptr, false);
      if (ref.is_discarded()) {
        // Not JSON (healthz): as an error body it must still give a clear message.
        auto e = error_from_response(500, s.body);
        EXPECT_EQ(e.kind, ErrorKind::Internal);
        EXPECT_NE(e.message.find("HTTP 500"), std::string::npos);
        EXPECT_NE(e.message.find("[+]ping ok"), std::string::npos);
        ++text;
        continue;
      }
      std::string kind = ref.value("kind", "");
      if (kind.size() > 4 && kind.ends_with("List")) {
        check_list(s, ref);
        ++lists;
      } else {
        auto obj = decode_object(s.body);
        ASSERT_TRUE(obj) << obj.error().describe();
        EXPECT_EQ(obj->kind, kind);
        if (ref.contains("metadata")) {
          EXPECT_EQ(obj->meta.name, ref["metadata"].value("name", ""));
          EXPECT_EQ(obj->meta.resource_version, ref["metadata"].value("resourceVersion", ""));
        }
        EXPECT_EQ(obj->raw, s.body);
        ++objects;
      }
    }
  }
  EXPECT_GT(lists, 10u);
  EXPECT_GT(watches, 10u);
  EXPECT_GT(errors, 20u);
  EXPECT_GT(objects, 10u);
  EXPECT_EQ(text, 2u);
}

TEST(KubeSamples, ListNamesAndPaging) {
  for (std::string v : {"v1.26.5", "v1.36.3"}) {
    SCOPED_TRACE(v);
    auto pods = decode_list(testing::load_sample(v, "list-pods").body);
    ASSERT_TRUE(pods);
    ASSERT_EQ(pods->items.size(), 2u);
    EXPECT_EQ(pods->items[0].meta.name, "pod-a");
    EXPECT_EQ(pods->items[1].meta.name, "pod-b");
    EXPECT_EQ(pods->items[0].node_name, "node-x");
    EXPECT_EQ(pods->items[1].node_name, "node-y");
    EXPECT_EQ(pods->items[0].key(), "default/pod-a");

    auto page1 = decode_list(testing::load_sample(v, "list-pods-limit1").body);
    ASSERT_TRUE(page1);
    ASSERT_EQ(page1->items.size(), 1u);
    EXPECT_FALSE(page1->continue_token.empty());
    EXPECT_EQ(page1->remaining_item_count, 1);
    auto page2 = decode_list(testing::load_sample(v, "list-pods-limit1-continue").body);
    ASSERT_TRUE(page2);
    ASSERT_EQ(page2->items.size(), 1u);
    EXPECT_TRUE(page2->continue_token.empty());
    EXPECT_NE(page1->items[0].meta.name, page2->items[0].meta.name);

    auto empty = decode_list(testing::load_sample(v, "list-pods-empty").body);
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->items.empty());
    EXPECT_FALSE(empty->resource_version.empty());
  }
}

TEST(KubeSamples, WatchTooOldIsGone) {
  for (std::string v : {"v1.26.5", "v1.36.3"}) {
    auto s = testing::load_sample(v, "watch-too-old-rv");
    auto lines = split_lines(s.body);
    ASSERT_EQ(lines.size(), 1u);
    auto ev = decode_watch_event(lines[0]);
    ASSERT_TRUE(ev);
    ASSERT_EQ(ev->type, EventType::Error);
    EXPECT_EQ(ev->error->kind, ErrorKind::Gone);
    EXPECT_NE(ev->error->message.find("too old resource version"), std::string::npos);
  }
}

TEST(KubeSamples, InitialEventsEndBookmark) {
  auto s = testing::load_sample("v1.36.3", "watchlist-pods");
  auto lines = split_lines(s.body);
  auto ev = decode_watch_event(lines.back());
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->type, EventType::Bookmark);
  EXPECT_FALSE(ev->object.meta.resource_version.empty());
  EXPECT_EQ(ev->object.json()["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
}

}  // namespace
}  // namespace edgehub::kube

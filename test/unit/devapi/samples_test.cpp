// Error bodies compared field by field with the captures of a real kube-apiserver
// (test/data/kube-samples): the same request against devapi must give the same Status kind,
// apiVersion, status, reason, code and details.
#include <gtest/gtest.h>

#include <edgehub/devapi/server.hpp>
#include <fstream>
#include <sstream>

#include "http_client.hpp"

namespace edgehub::devapi {
namespace {

using testing::HttpCall;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sample_path(const std::string& version, const std::string& name) {
  return std::string(EDGEHUB_TEST_DATA) + "/kube-samples/" + version + "/" + name;
}

// NAME.request: `METHOD PATH [-H Name: value]... [--data BODY]`.
HttpCall parse_request(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  HttpCall call;
  const auto sp1 = line.find(' ');
  call.method = line.substr(0, sp1);
  std::string rest = line.substr(sp1 + 1);
  const auto sp2 = rest.find(' ');
  call.target = rest.substr(0, sp2);
  rest = sp2 == std::string::npos ? "" : rest.substr(sp2 + 1);
  call.content_type = "application/json";
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.erase(0, 1);
    if (rest.rfind("--data ", 0) == 0) {
      const std::string after = rest.substr(7);
      const auto next_h = after.find(" -H ");
      call.body = after.substr(0, next_h);
      rest = next_h == std::string::npos ? "" : after.substr(next_h + 1);
    } else if (rest.rfind("-H ", 0) == 0) {
      const std::string after = rest.substr(3);
      auto end = std::min(after.find(" -H "), after.find(" --data "));
      const std::string header = after.substr(0, end);
      rest = end == std::string::npos ? "" : after.substr(end + 1);
      const auto colon = header.find(':');
      std::string value = header.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      const std::string name = header.substr(0, colon);
      if (name == "Content-Type") {
        call.content_type = value;
      } else {
        call.headers[name] = value;
      }
    } else {
      break;
    }
  }
  return call;
}

void expect_same_status(const nlohmann::json& mine, const nlohmann::json& real,
                        const std::string& sample) {
  for (const char* field : {"kind", "apiVersion", "status", "reason", "code"}) {
    EXPECT_EQ(mine.value(field, nlohmann::json()), real.value(field, nlohmann::json()))
        << sample << ": field " << field << "\nmine: " << mine.dump();
  }
  EXPECT_EQ(mine.value("details", nlohmann::json()), real.value("details", nlohmann::json()))
      << sample << ": details\nmine: " << mine.dump();
}

class Samples : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    server_.start();
    Store& store = server_.store();
    const auto& nodes = resource_by_name("nodes");
    // The state the captures were taken in: nodes x/y, pods a/b in default.
    store.create(nodes, "", {{"metadata", {{"name", "node-x"}}}});
    store.create(nodes, "", {{"metadata", {{"name", "node-y"}}}});
    for (const char* name : {"pod-a", "pod-b"}) {
      store.create(
          resource_by_name("pods"), "default",
          {{"metadata", {{"name", name}}},
           {"spec", {{"nodeName", "node-x"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}});
    }
  }
  Server server_{ServerOptions{}};
};

TEST_P(Samples, ErrorStatusMatchesRealServer) {
  for (const std::string version : {"v1.26.5", "v1.36.3"}) {
    const std::string name = GetParam();
    const HttpCall call = parse_request(read_file(sample_path(version, name + ".request")));
    const auto real = nlohmann::json::parse(read_file(sample_path(version, name + ".body")));
    const auto result = testing::http_call(server_.port(), call);
    EXPECT_EQ(result.status, real["code"].get<int>()) << version << "/" << name;
    EXPECT_EQ(result.headers.at("content-type"), "application/json");
    expect_same_status(result.json(), real, version + "/" + name);
  }
}

INSTANTIATE_TEST_SUITE_P(KubeSamples, Samples,
                         ::testing::Values("bad-fieldselector-400", "bad-json-400",
                                           "bad-labelselector-400", "bad-rvmatch-422",
                                           "conflict-409-update", "get-lease-404", "get-pod-404",
                                           "invalid-pod-422", "list-continue-bogus-400",
                                           "list-exact-compacted-410", "method-not-allowed-405",
                                           "pod-exists-409", "unknown-resource-404"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(SamplesAuth, WrongBearerTokenIsUnauthorized) {
  ServerOptions options;
  options.bearer_token = "right-token";
  Server server(options);
  server.start();
  const std::string version = "v1.36.3";
  const HttpCall call = parse_request(read_file(sample_path(version, "bad-token-401.request")));
  const auto result = testing::http_call(server.port(), call);
  EXPECT_EQ(result.status, 401);
  expect_same_status(result.json(),
                     nlohmann::json::parse(read_file(sample_path(version, "bad-token-401.body"))),
                     "bad-token-401");
  HttpCall good{"GET", "/api/v1/pods", "", "", {{"Authorization", "Bearer right-token"}}};
  EXPECT_EQ(testing::http_call(server.port(), good).status, 200);
}

TEST(SamplesWatch, ExpiredWatchIsAnErrorEventLikeTheRealOne) {
  Server server{ServerOptions{}};
  server.start();
  server.store().create(resource_by_name("configmaps"), "default", {{"metadata", {{"name", "x"}}}});
  server.expire_history();
  testing::WatchStream watch(server.port(), "/api/v1/pods?watch=1&resourceVersion=2");
  EXPECT_EQ(watch.status(), 200);
  const auto event = watch.next();
  ASSERT_TRUE(event);
  const auto real =
      nlohmann::json::parse(read_file(sample_path("v1.36.3", "watch-too-old-rv.body")));
  EXPECT_EQ((*event)["type"], real["type"]);
  expect_same_status((*event)["object"], real["object"], "watch-too-old-rv");
  EXPECT_FALSE(watch.next());
}

}  // namespace
}  // namespace edgehub::devapi

// Edge cases of the envelope scanner and the line splitter.

#include <edgehub/kube/error.hpp>
#include <edgehub/kube/object.hpp>
#include <edgehub/kube/resource.hpp>
#include <edgehub/kube/watch_decoder.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

namespace edgehub::kube {
namespace {

std::vector<WatchEvent> feed_all(WatchDecoder& d, std::string_view data, Result<bool>* status) {
  std::vector<WatchEvent> out;
  *status = d.feed(data, [&](WatchEvent&& e) {
    out.push_back(std::move(e));
    return true;
  });
  return out;
}

TEST(KubeDecoder, EscapedStringsAndNesting) {
  std::string line =
      R"({"object":{"spec":{"containers":[{"name":"c","args":["}]{[\"x"]}],"nodeName":"n\u002d1"},)"
      R"("metadata":{"name":"a\"b","namespace":"ns","uid":"u","resourceVersion":"7",)"
      R"("labels":{"k":"v"}},"kind":"Pod"},"type":"MODIFIED"})";
  auto ev = decode_watch_event(line);
  ASSERT_TRUE(ev) << ev.error().describe();
  EXPECT_EQ(ev->type, EventType::Modified);
  EXPECT_EQ(ev->object.meta.name, "a\"b");
  EXPECT_EQ(ev->object.node_name, "n-1");
  EXPECT_EQ(ev->object.kind, "Pod");
  EXPECT_EQ(ev->object.meta.resource_version, "7");
  EXPECT_EQ(ev->object.key(), "ns/a\"b");
}

TEST(KubeDecoder, BackslashRunsBeforeQuotes) {
  auto ev = decode_watch_event(R"({"type":"ADDED","object":{"metadata":{"name":"a\\","uid":"b\\\"c","x":"\\\\"}}})");
  ASSERT_TRUE(ev) << ev.error().describe();
  EXPECT_EQ(ev->object.meta.name, "a\\");
  EXPECT_EQ(ev->object.meta.uid, "b\\\"c");
  EXPECT_FALSE(decode_watch_event(R"({"type":"ADDED","object":{"metadata":{"name":"a\"}}})"));
}

TEST(KubeDecoder, MalformedInputsAreProtocolErrors) {
  for (std::string bad : {"", "{", "[]", "{\"type\":\"ADDED\"}", "{\"type\":\"ADDED\",\"object\":{]}",
                          "{\"type\":\"FOO\",\"object\":{}}", "{\"type\":1,\"object\":{}}",
                          "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":5}}}",
                          "{\"type\":\"ADDED\",\"object\":{}} trailing", "nonsense"}) {
    auto ev = decode_watch_event(bad);
    ASSERT_FALSE(ev) << bad;
    EXPECT_EQ(ev.error().kind, ErrorKind::Protocol);
  }
  EXPECT_FALSE(decode_list("{\"kind\":\"PodList\"}"));
  EXPECT_FALSE(decode_list("{\"items\":[{\"metadata\":[]}]}"));
  EXPECT_TRUE(decode_list("{\"items\":null,\"metadata\":{}}"));
  EXPECT_FALSE(decode_object("{\"metadata\":{\"name\":\"x\"}"));
}

TEST(KubeDecoder, MutatedEventsNeverCrash) {
  const std::string base =
      nlohmann::json{{"type", "MODIFIED"},
                     {"object",
                      {{"kind", "Pod"},
                       {"metadata", {{"name", "p"}, {"namespace", "n"}, {"uid", "u"}, {"resourceVersion", "5"},
                                     {"labels", {{"a", "b\"c"}}}}},
                       {"spec", {{"nodeName", "x"}, {"containers", {{{"name", "c"}, {"args", {"-a", "{[\\\"]}"}}}}}}},
                       {"status", {{"phase", "Running"}, {"n", {1, 2.5e3, true, nullptr}}}}}}}
          .dump();
  ASSERT_TRUE(decode_watch_event(base));
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]\":,\\ \tabn0-9.eE+";
  for (int i = 0; i < 20000; ++i) {
    std::string s = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      std::size_t pos = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(pos, 1 + rng() % 8); break;
        default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
      }
    }
    auto ev = decode_watch_event(s);  // must not crash; a success must be self-consistent
    if (ev) {
      EXPECT_FALSE(ev->object.raw.empty());
    }
    auto list = decode_list(s);
    (void)list;
  }
}

TEST(KubeDecoder, DeepNestingDoesNotOverflow) {
  std::string deep = "{\"type\":\"ADDED\",\"object\":{\"x\":" + std::string(100000, '[') + "}}";
  EXPECT_FALSE(decode_watch_event(deep));
}

TEST(KubeDecoder, SplitsLinesAcrossChunks) {
  WatchDecoder d;
  Result<bool> st = true;
  auto a = feed_all(d, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\r\n{\"ty", &st);
  ASSERT_TRUE(st);
  ASSERT_EQ(a.size(), 1u);
  auto b = feed_all(d, "pe\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"b\"}}}\n\n", &st);
  ASSERT_TRUE(st);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].object.meta.name, "b");
  EXPECT_EQ(b[0].type, EventType::Deleted);
  EXPECT_EQ(d.events(), 2u);
}

TEST(KubeDecoder, LastLineWithoutNewlineAndTruncation) {
  WatchDecoder d;
  Result<bool> st = true;
  feed_all(d, "{\"type\":\"ADDED\",\"object\":{}}", &st);
  std::vector<WatchEvent> got;
  auto sink = [&](WatchEvent&& e) {
    got.push_back(std::move(e));
    return true;
  };
  ASSERT_TRUE(d.finish(sink));
  EXPECT_EQ(got.size(), 1u);

  WatchDecoder t;
  feed_all(t, "{\"type\":\"ADDED\",\"obj", &st);
  auto r = t.finish(sink);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::StreamBroken);
}

TEST(KubeDecoder, OversizedLineFails) {
  WatchDecoder d(64);
  Result<bool> st = true;
  feed_all(d, std::string(100, 'x'), &st);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind, ErrorKind::Protocol);
}

TEST(KubeDecoder, SinkCanStop) {
  WatchDecoder d;
  int n = 0;
  auto r = d.feed("{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"ADDED\",\"object\":{}}\n",
                  [&](WatchEvent&&) { return ++n < 1; });
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_EQ(n, 1);
}

TEST(KubeErrors, NonStatusBodies) {
  auto e = error_from_response(502, "<html>bad gateway</html>");
  EXPECT_EQ(e.kind, ErrorKind::UnexpectedStatus);
  EXPECT_EQ(e.http_status, 502);
  EXPECT_NE(e.describe().find("502"), std::string::npos);
  EXPECT_NE(e.message.find("bad gateway"), std::string::npos);

  auto empty = error_from_response(503, "");
  EXPECT_EQ(empty.kind, ErrorKind::ServiceUnavailable);

  auto tmr = error_from_response(
      429, R"({"kind":"Status","reason":"TooManyRequests","message":"slow down","code":429,"details":{"retryAfterSeconds":3}})");
  EXPECT_EQ(tmr.kind, ErrorKind::TooManyRequests);
  ASSERT_TRUE(tmr.retry_after);
  EXPECT_EQ(tmr.retry_after->count(), 3);
  auto hdr = error_from_response(429, "", "7");
  ASSERT_TRUE(hdr.retry_after);
  EXPECT_EQ(hdr.retry_after->count(), 7);

  auto tmo = error_from_response(
      504, R"({"kind":"Status","reason":"Timeout","message":"timed out","code":504})");
  EXPECT_EQ(tmo.kind, ErrorKind::Timeout);
  auto ise = error_from_response(
      500, R"({"kind":"Status","reason":"InternalError","message":"boom","code":500})");
  EXPECT_EQ(ise.kind, ErrorKind::Internal);
}

TEST(KubeResource, Paths) {
  EXPECT_EQ(resources::pods().path("default", "p", "status"), "/api/v1/namespaces/default/pods/p/status");
  EXPECT_EQ(resources::pods().path(), "/api/v1/pods");
  EXPECT_EQ(resources::nodes().path("ignored", "n"), "/api/v1/nodes/n");
  EXPECT_EQ(resources::leases().path("kube-node-lease", "x"),
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/x");
  EXPECT_EQ(resources::devices().path("d"), "/apis/devices.kubeedge.io/v1beta1/namespaces/d/devices");
  EXPECT_EQ(resources::nodesyncs().path({}, "n"), "/apis/edgehub.io/v1alpha1/nodesyncs/n");
  EXPECT_EQ(resources::serviceaccounts().path("ns", "sa", "token"),
            "/api/v1/namespaces/ns/serviceaccounts/sa/token");
  EXPECT_EQ(url_encode("spec.nodeName!=,a b"), "spec.nodeName%21%3D%2Ca%20b");
}

// A segment stays one segment: `?` cannot turn …/pods/p?/status into a PATCH of the pod.
TEST(KubeResource, PathSegmentsAreEncoded) {
  EXPECT_EQ(resources::pods().path("default", "p?", "status"),
            "/api/v1/namespaces/default/pods/p%3F/status");
  EXPECT_EQ(resources::pods().path("a/b", "p#x", "status"),
            "/api/v1/namespaces/a%2Fb/pods/p%23x/status");
  EXPECT_EQ(resources::pods().path("default", "..", "status"),
            "/api/v1/namespaces/default/pods/%2E%2E/status");
  EXPECT_EQ(resources::pods().path(".", "%2F"), "/api/v1/namespaces/%2E/pods/%252F");
  EXPECT_EQ(resources::pods().path("default", "web-1.x"), "/api/v1/namespaces/default/pods/web-1.x");
}

}  // namespace
}  // namespace edgehub::kube

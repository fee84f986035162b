// Every kind of malformed input gets a typed error naming the field; nothing throws or crashes.
#include <edgehub/wire/message.hpp>
#include <edgehub/wire/resource.hpp>
#include <gtest/gtest.h>

#include <random>

namespace edgehub::wire {
namespace {

DecodeError decode_error(std::string_view payload, const DecodeLimits& limits = {}) {
  auto result = decode(payload, limits);
  EXPECT_FALSE(result.has_value()) << payload;
  return result ? DecodeError{} : result.error();
}

constexpr std::string_view kRoute = R"("route":{"source":"s","group":"g","operation":"o","resource":"r"})";

TEST(WireDecodeErrors, NotJson) {
  const auto e = decode_error("hello");
  EXPECT_EQ(e.code, DecodeErrc::not_json);
  EXPECT_EQ(decode_error(R"({"header":{"msg_id":"x")").code, DecodeErrc::not_json);
  EXPECT_EQ(decode_error(R"({"header":{}, )" + std::string(kRoute) + "} trailing").code,
            DecodeErrc::not_json);
  EXPECT_EQ(decode_error("").code, DecodeErrc::not_json);
}

TEST(WireDecodeErrors, JsonButNotAnObject) {
  for (std::string_view payload : {"[1,2]", "\"text\"", "42", "null"}) {
    const auto e = decode_error(payload);
    EXPECT_EQ(e.code, DecodeErrc::not_object) << payload;
    EXPECT_NE(e.message.find("not a JSON object"), std::string::npos);
  }
}

TEST(WireDecodeErrors, MissingRoute) {
  const auto e = decode_error(R"({"header":{"msg_id":"a","timestamp":1},"content":null})");
  EXPECT_EQ(e.code, DecodeErrc::missing_field);
  EXPECT_EQ(e.field, "route");
  EXPECT_NE(e.message.find("route"), std::string::npos);
}

TEST(WireDecodeErrors, MissingHeader) {
  const auto e = decode_error("{" + std::string(kRoute) + "}");
  EXPECT_EQ(e.code, DecodeErrc::missing_field);
  EXPECT_EQ(e.field, "header");
}

TEST(WireDecodeErrors, NonIntegerTimestamp) {
  for (std::string_view ts : {"1.5", "1e3", "\"123\"", "true", "99999999999999999999"}) {
    const auto e = decode_error(R"({"header":{"msg_id":"a","timestamp":)" + std::string(ts) +
                                "}," + std::string(kRoute) + "}");
    EXPECT_EQ(e.code, DecodeErrc::bad_timestamp) << ts;
    EXPECT_EQ(e.field, "header.timestamp");
  }
}

TEST(WireDecodeErrors, WrongTypes) {
  struct Case {
    std::string payload;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"header":[],)" + std::string(kRoute) + "}", "header"},
      {R"({"header":{"msg_id":7},)" + std::string(kRoute) + "}", "header.msg_id"},
      {R"({"header":{"sync":"yes"},)" + std::string(kRoute) + "}", "header.sync"},
      {R"({"header":{},"route":"r"})", "route"},
      {R"({"header":{},"route":{"operation":{}}})", "route.operation"},
      {R"({"header":{},"route":{"resource":["a"]}})", "route.resource"},
  };
  for (const auto& c : cases) {
    const auto e = decode_error(c.payload);
    EXPECT_EQ(e.code, DecodeErrc::wrong_type) << c.payload;
    EXPECT_EQ(e.field, c.field) << c.payload;
    EXPECT_NE(e.message.find(c.field), std::string::npos) << e.message;
  }
}

TEST(WireDecodeErrors, NestingDeeperThanTheLimit) {
  std::string deep = R"({"header":{},)" + std::string(kRoute) + R"(,"content":)";
  deep += std::string(100000, '[') + std::string(100000, ']') + "}";
  const auto e = decode_error(deep);
  EXPECT_EQ(e.code, DecodeErrc::too_deep);
  EXPECT_EQ(e.field, "content");
  // Within the limit is fine.
  std::string ok = R"({"header":{},)" + std::string(kRoute) + R"(,"content":)" +
                   std::string(60, '[') + std::string(60, ']') + "}";
  EXPECT_TRUE(decode(ok));
}

TEST(WireDecodeErrors, PayloadOverTheSizeLimit) {
  const std::string big = R"({"header":{},)" + std::string(kRoute) + R"(,"content":")" +
                          std::string(2000, 'x') + "\"}";
  const auto e = decode_error(big, {.max_bytes = 1024, .max_depth = 64});
  EXPECT_EQ(e.code, DecodeErrc::too_large);
  EXPECT_NE(e.message.find("1024"), std::string::npos);
}

TEST(WireDecodeErrors, InvalidStringsInContent) {
  const std::string head = R"({"header":{},)" + std::string(kRoute) + R"(,"content":")";
  EXPECT_EQ(decode_error(head + "\x01\"}").code, DecodeErrc::not_json);
  EXPECT_EQ(decode_error(head + "\xff\xfe\"}").code, DecodeErrc::not_json);
  EXPECT_EQ(decode_error(head + "\\ud800\"}").code, DecodeErrc::not_json);
  EXPECT_EQ(decode_error(head + "\\q\"}").code, DecodeErrc::not_json);
  EXPECT_TRUE(decode(head + "\\ud83d\\ude00 \xc3\xa9\"}"));
}

TEST(WireDecodeErrors, RandomBytesNeverCrash) {
  std::mt19937 rng(7);
  const std::string valid =
      R"({"header":{"msg_id":"a","timestamp":12},"route":{"source":"s","group":"g","operation":"insert","resource":"ns/pod/p"},"content":{"a":[1,2.5e3,"x",true,null]}})";
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string mutated = valid;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      mutated[rng() % mutated.size()] = static_cast<char>(rng() % 256);
    }
    auto result = decode(mutated);
    if (result) {
      ++decoded;
      // Whatever decodes is valid JSON, and so is its content.
      EXPECT_TRUE(nlohmann::json::accept(mutated)) << mutated;
      EXPECT_FALSE(result->content_json().is_discarded()) << mutated;
    } else {
      EXPECT_FALSE(result.error().message.empty());
    }
  }
  EXPECT_GT(decoded, 0);
}

TEST(WireResource, ParsesEveryForm) {
  auto r = parse_resource("default/pod/nginx");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->form, ResourceForm::object);
  EXPECT_EQ(r->ns, "default");
  EXPECT_EQ(r->type, "pod");
  EXPECT_EQ(r->name, "nginx");

  r = parse_resource("null/node/edge-1");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->cluster_scoped());
  EXPECT_EQ(r->type, "node");

  r = parse_resource("default/podstatus");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "");

  r = parse_resource("device/default/thermo-1/twin/edge_updated");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->form, ResourceForm::device_twin);
  EXPECT_EQ(r->ns, "default");
  EXPECT_EQ(r->name, "thermo-1");
  EXPECT_EQ(r->event, "twin/edge_updated");

  r = parse_resource("device/default/thermo-1/state/update");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->form, ResourceForm::device_state);

  EXPECT_EQ(parse_resource("membership")->form, ResourceForm::membership);
  EXPECT_EQ(parse_resource("membership/detail")->form, ResourceForm::membership_detail);
  EXPECT_EQ(parse_resource("k8s/ca.crt")->form, ResourceForm::k8s_ca);
  EXPECT_EQ(parse_resource("twin")->form, ResourceForm::twin);
  EXPECT_EQ(parse_resource("node")->form, ResourceForm::keepalive);
}

TEST(WireResource, TooManyOrTooFewSegments) {
  auto few = parse_resource("pods");
  ASSERT_FALSE(few);
  EXPECT_NE(few.error().message.find("too few segments"), std::string::npos);
  auto many = parse_resource("a/b/c/d");
  ASSERT_FALSE(many);
  EXPECT_NE(many.error().message.find("too many segments"), std::string::npos);
  EXPECT_FALSE(parse_resource("default//x"));
  EXPECT_FALSE(parse_resource(""));
  EXPECT_FALSE(parse_resource("device/default/x"));
  EXPECT_FALSE(parse_resource("device/default/x/other/thing"));
  EXPECT_FALSE(parse_resource("default/pod/a b"));
}

TEST(WireResource, FormatsWithNullNamespace) {
  EXPECT_EQ(format_resource("", "node", "edge-1"), "null/node/edge-1");
  EXPECT_EQ(format_resource("kube-node-lease", "lease", "edge-1"), "kube-node-lease/lease/edge-1");
  EXPECT_EQ(format_resource("default", "podstatus", ""), "default/podstatus");
}

}  // namespace
}  // namespace edgehub::wire

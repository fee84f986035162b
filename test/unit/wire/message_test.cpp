#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/message.hpp>
#include <gtest/gtest.h>

#include <set>

#include "captures.hpp"

namespace edgehub::wire {
namespace {

Message decode_ok(std::string_view payload) {
  auto result = decode(payload);
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().message);
  return result ? *result : Message{};
}

// Every message a real edgecore and cloudcore exchanged decodes, and encodes back to the very
// same bytes: key order, omitted empty fields, integer timestamps, raw content, trailing '\n'.
TEST(WireCaptures, EveryRecordedMessageRoundTripsByteForByte) {
  const auto frames = test::load_captures();
  ASSERT_GT(frames.size(), 200u);
  for (const auto& frame : frames) {
    auto decoded = decode(frame.payload);
    ASSERT_TRUE(decoded) << frame.file << ": " << decoded.error().message << "\n" << frame.payload;
    EXPECT_EQ(encode(*decoded), frame.payload) << frame.file;
  }
}

// What cloudcore requires an ACK for, the real edge did ACK.
TEST(WireCaptures, MessagesClassifiedAckRequiredWereAckedByTheEdge) {
  const auto frames = test::load_captures();
  std::set<std::string> acked;
  for (const auto& frame : frames) {
    if (frame.direction != "up") continue;
    const auto m = decode_ok(frame.payload);
    if (m.route.operation == "response" && m.content_string() == "OK") {
      acked.insert(m.header.parent_msg_id);
    }
  }
  int required = 0;
  for (const auto& frame : frames) {
    if (frame.direction != "down") continue;
    const auto m = decode_ok(frame.payload);
    if (!needs_ack(m)) continue;
    ++required;
    EXPECT_TRUE(acked.contains(m.header.msg_id))
        << frame.file << ": " << m.route.operation << " " << m.route.resource;
  }
  EXPECT_GT(required, 20);
}

TEST(WireGolden, Keepalive) {
  const auto m = decode_ok(
      R"({"header":{"msg_id":"3c1d","timestamp":1754450000000},"route":{"source":"websocket","group":"resource","operation":"keepalive","resource":"node"},"content":"ping"})");
  EXPECT_EQ(m.header.msg_id, "3c1d");
  EXPECT_EQ(m.header.timestamp, 1754450000000);
  EXPECT_EQ(m.route.source, "websocket");
  EXPECT_EQ(m.route.operation, "keepalive");
  EXPECT_EQ(m.route.resource, "node");
  EXPECT_EQ(m.content_string(), "ping");
}

constexpr std::string_view kPodInsert =
    R"({"header":{"msg_id":"5f0c6a8e-7d1b-4c2e-9a51-3b6f2f4d8e10","timestamp":1754450000123,"resourceversion":"918273"},"route":{"source":"edgecontroller","group":"resource","operation":"insert","resource":"default/pod/nginx-7c5ddbdf54-x2x9k"},"content":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"nginx-7c5ddbdf54-x2x9k","namespace":"default","uid":"8a3e6c1e-2f55-4b8e-9d8e-0e1f2a3b4c5d","resourceVersion":"918273","creationTimestamp":"2025-08-06T03:13:20Z","labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","resources":{}}],"restartPolicy":"Always","nodeName":"edge-1","schedulerName":"default-scheduler"},"status":{"phase":"Pending","qosClass":"BestEffort"}}})";

TEST(WireGolden, PodInsertDecodesAndEncodesExactly) {
  const auto m = decode_ok(kPodInsert);
  EXPECT_EQ(m.header.resource_version, "918273");
  EXPECT_EQ(m.route.resource, "default/pod/nginx-7c5ddbdf54-x2x9k");
  const auto pod = m.content_json();
  EXPECT_EQ(pod["metadata"]["uid"], "8a3e6c1e-2f55-4b8e-9d8e-0e1f2a3b4c5d");
  EXPECT_EQ(pod["spec"]["nodeName"], "edge-1");
  // The worked example in KUBEEDGE-WIRE §2.5: 698 bytes of payload (without Go's '\n').
  auto wire = encode(m);
  ASSERT_EQ(wire.back(), '\n');
  wire.pop_back();
  EXPECT_EQ(wire, kPodInsert);
  EXPECT_EQ(wire.size(), 698u);
  EXPECT_TRUE(needs_ack(m));
}

TEST(WireGolden, AckCopiesRouteAndAnswersTheMessageId) {
  const auto pod = decode_ok(kPodInsert);
  const auto ack = make_ack(pod, 1754450000200);
  EXPECT_EQ(ack.header.parent_msg_id, "5f0c6a8e-7d1b-4c2e-9a51-3b6f2f4d8e10");
  EXPECT_EQ(ack.header.msg_id.size(), 36u);
  EXPECT_TRUE(ack.header.resource_version.empty());
  const auto json = nlohmann::json::parse(encode(ack));
  EXPECT_EQ(json["route"],
            nlohmann::json::parse(
                R"({"source":"edgecontroller","group":"resource","operation":"response","resource":"default/pod/nginx-7c5ddbdf54-x2x9k"})"));
  EXPECT_EQ(json["content"], "OK");
  EXPECT_FALSE(needs_ack(ack));
}

TEST(WireGolden, NodeRegistrationAndObjectRespReply) {
  const auto request = decode_ok(
      R"({"header":{"msg_id":"a1","timestamp":1754400000000},"route":{"source":"edged","group":"meta","operation":"insert","resource":"null/node/edge-1"},"content":{"apiVersion":"v1","kind":"Node","metadata":{"name":"edge-1"}}})");
  EXPECT_EQ(request.route.group, "meta");
  const auto reply = make_response(
      request,
      object_resp(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"edge-1","uid":"u","resourceVersion":"777"}})"),
      source::kEdgeController, group::kResource, {}, 1754400000000);
  auto wire = encode(reply);
  const auto json = nlohmann::json::parse(wire);
  EXPECT_EQ(json["header"]["parent_msg_id"], "a1");
  EXPECT_FALSE(json["header"].contains("resourceversion"));
  EXPECT_EQ(json["route"]["operation"], "response");
  EXPECT_EQ(json["route"]["resource"], "null/node/edge-1");
  ASSERT_TRUE(json["content"].contains("Err"));
  EXPECT_TRUE(json["content"]["Err"].is_null());
  EXPECT_EQ(json["content"]["Object"]["metadata"]["resourceVersion"], "777");
  EXPECT_FALSE(needs_ack(reply));
}

TEST(WireGolden, AlreadyExistsAsStatusError) {
  const auto err = status_error({.reason = "AlreadyExists",
                                 .code = 409,
                                 .message = "nodes \"edge-1\" already exists",
                                 .name = "edge-1",
                                 .kind = "nodes"});
  EXPECT_EQ(err,
            R"({"ErrStatus":{"metadata":{},"status":"Failure","message":"nodes \"edge-1\" already exists","reason":"AlreadyExists","details":{"name":"edge-1","kind":"nodes"},"code":409}})");
  EXPECT_EQ(object_resp("null", err), R"({"Object":null,"Err":)" + err + "}");
}

// The exact lease 404 reply cloudcore sent in edged/register.jsonl.
TEST(WireGolden, StatusErrorFromApiStatusMatchesCloudcore) {
  const auto status = nlohmann::json::parse(
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"leases.coordination.k8s.io \"edge-k1\" not found","reason":"NotFound","details":{"name":"edge-k1","group":"coordination.k8s.io","kind":"leases"},"code":404})");
  EXPECT_EQ(
      status_error_from_status(status),
      R"({"ErrStatus":{"metadata":{},"status":"Failure","message":"leases.coordination.k8s.io \"edge-k1\" not found","reason":"NotFound","details":{"name":"edge-k1","group":"coordination.k8s.io","kind":"leases"},"code":404}})");
}

TEST(WireGolden, ConfigMapQueryReplyCarriesResourceVersionAndNeedsAck) {
  const auto query = decode_ok(
      R"({"header":{"msg_id":"a3","timestamp":1},"route":{"source":"edged","group":"meta","operation":"query","resource":"default/configmap/app-cfg"},"content":null})");
  EXPECT_EQ(query.content, "null");
  const auto reply = make_response(
      query,
      R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app-cfg","namespace":"default","uid":"u-1","resourceVersion":"4242"},"data":{"k":"v"}})",
      source::kEdgeController, group::kResource, "4242", 2);
  EXPECT_EQ(
      encode(reply),
      R"({"header":{"msg_id":")" + reply.header.msg_id +
          R"(","parent_msg_id":"a3","timestamp":2,"resourceversion":"4242"},"route":{"source":"edgecontroller","group":"resource","operation":"response","resource":"default/configmap/app-cfg"},"content":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"app-cfg","namespace":"default","uid":"u-1","resourceVersion":"4242"},"data":{"k":"v"}}})"
          "\n");
  EXPECT_TRUE(needs_ack(reply));
  // A failed query is answered with the StatusError and needs no ACK.
  auto failed = make_response(query, status_error({.reason = "NotFound", .code = 404}));
  EXPECT_FALSE(needs_ack(failed));
}

TEST(WireGolden, PodStatusPatchContentIsAJsonString) {
  const auto m = decode_ok(
      R"({"header":{"msg_id":"a4","timestamp":1},"route":{"source":"edged","group":"meta","operation":"patch","resource":"default/podpatch/nginx"},"content":"{\"metadata\":{\"uid\":\"0b1c\"},\"status\":{\"phase\":\"Running\"}}"})");
  const auto patch = m.content_string();
  ASSERT_TRUE(patch.has_value());
  EXPECT_EQ(*patch, R"({"metadata":{"uid":"0b1c"},"status":{"phase":"Running"}})");
  EXPECT_EQ(nlohmann::json::parse(*patch)["status"]["phase"], "Running");
}

TEST(WireGolden, MembershipUpdateNeedsNoAck) {
  Message m;
  m.header.msg_id = "c3";
  m.header.timestamp = 5;
  m.route = {.source = "devicecontroller", .group = "twin", .operation = "update", .resource = "membership"};
  m.set_content(nlohmann::json::parse(
      R"({"event_id":"e1","timestamp":5,"added_devices":[{"id":"default/thermo-1","name":"thermo-1"}],"removed_devices":null})"));
  EXPECT_FALSE(needs_ack(m));
  const auto back = decode_ok(encode(m));
  EXPECT_EQ(back.content_json()["added_devices"][0]["id"], "default/thermo-1");
}

TEST(WireGolden, EdgecoreShutdownMessageDecodes) {
  // KUBEEDGE-WIRE §10.6: sent by edgecore on SIGTERM.
  const auto m = decode_ok(R"({"header":{"msg_id":"","timestamp":0},"route":{},"content":null})");
  EXPECT_TRUE(m.header.msg_id.empty());
  EXPECT_TRUE(m.route.operation.empty());
  EXPECT_EQ(encode(m), R"({"header":{"msg_id":"","timestamp":0},"route":{},"content":null})"
                       "\n");
}

TEST(WireEncode, EscapesStringsAsGoDoes) {
  Message m;
  m.header.msg_id = "a\"b\\c\n<&>";
  m.set_content_string("x\ty\u2028");
  EXPECT_EQ(encode(m),
            R"({"header":{"msg_id":"a\"b\\c\n\u003c\u0026\u003e","timestamp":0},"route":{},"content":"x\ty\u2028"})"
            "\n");
  EXPECT_EQ(decode_ok(encode(m)).header.msg_id, "a\"b\\c\n<&>");
}

TEST(WireIds, MessageIdsAreUuidV4) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto id = new_message_id();
    ASSERT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '4');
    EXPECT_NE(std::string_view("89ab").find(id[19]), std::string_view::npos);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace edgehub::wire

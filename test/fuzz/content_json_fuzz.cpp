// Inner content JSON: what the upstream handlers (src/hub/upstream.cpp) do with a request's
// content, which edgecore sends either as an embedded object or as a JSON string holding JSON
// (patches, statuses, event bodies). The handlers parse it with wire::parse_json_bounded,
// judge it with the authz rules, and send what was checked re-serialised with
// wire::dump_json. This target runs those same functions on the fuzzer's text, both ways.

#include <edgehub/authz/rules.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <edgehub/wire/message.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using nlohmann::json;
namespace authz = edgehub::authz;
namespace wire = edgehub::wire;

// upstream.cpp's content_object(): a string content is parsed, an embedded one read.
json content_object(const wire::Message& m) {
  if (auto text = m.content_string()) return wire::parse_json_bounded(*text, wire::kMaxEdgeJsonDepth);
  return m.content_json();
}

const json& labels_of(const json& body) {
  static const json none = json::object();
  if (!body.is_object()) return none;
  const auto meta = body.find("metadata");
  if (meta == body.end() || !meta->is_object()) return none;
  const auto labels = meta->find("labels");
  return labels != meta->end() ? *labels : none;
}

// Every rule a handler applies to a body it parsed, and the re-serialisation of what passes.
void judge(const json& body) {
  (void)wire::dump_json(body);
  (void)authz::node_create("edge-1", body);
  (void)authz::node_labels_update(json::object(), labels_of(body));
  (void)authz::patch_touches_labels(body);
  (void)authz::node_status_patch(body, json::object({{"node-role.kubernetes.io/edge", ""}}));
  (void)authz::pod_status_patch(body);
  (void)authz::mirror_pod_create("edge-1", "6f1c0d4e-0000-4000-8000-000000000001", body);
  static const auto pod = json::parse(R"({"metadata":{"name":"p","namespace":"default",
      "uid":"6f1c0d4e-0000-4000-8000-000000000002"},
      "spec":{"nodeName":"edge-1","serviceAccountName":"default"}})");
  (void)authz::bound_pod_name(body);
  auto token = authz::token_request("edge-1", "default", "default", body, pod);
  if (token.decision) (void)wire::dump_json(token.body);
  (void)authz::event_subject("edge-1", "default", body, wire::dump_json(body).size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  wire::Message as_string;  // content "…": a patch or object as a JSON string
  as_string.set_content_string(text);
  judge(content_object(as_string));
  // content {…}: an object embedded in the message, depth-checked by the decoder.
  if (auto m = wire::decode(R"({"header":{},"route":{},"content":)" + std::string(text) + "}")) {
    judge(content_object(*m));
  }
  return 0;
}

// Inner content JSON: what the upstream handlers (src/hub/upstream.cpp) do with a request's
// content when it is a JSON string holding JSON (edgecore sends patches, statuses and event
// bodies that way): parse it, read the fields each handler reads, and dump what goes to the
// API. The handlers are coroutines bound to a kube::Client, so this mirrors their JSON steps
// one by one; keep it in step with upstream.cpp. The input is the string's text.

#include <edgehub/wire/message.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using nlohmann::json;

// upstream.cpp: content_object().
json content_object(const edgehub::wire::Message& m) {
  if (auto text = m.content_string()) return json::parse(*text, nullptr, false);
  return m.content_json();
}

// own_object(): node and lease inserts and updates.
void own_object(const edgehub::wire::Message& m) {
  auto body = content_object(m);
  if (!body.is_object()) body = json::object();
  body["apiVersion"] = "v1";
  body["kind"] = "Node";
  body["metadata"]["name"] = "edge-1";
  body["metadata"]["namespace"] = "kube-node-lease";
  (void)body.dump();
}

// node_update(): labels and annotations only.
void node_update(const edgehub::wire::Message& m) {
  const auto body = content_object(m);
  json patch = {{"metadata", json::object()}};
  if (body.is_object() && body.contains("metadata") && body["metadata"].is_object()) {
    for (const char* key : {"labels", "annotations"}) {
      if (body["metadata"].contains(key)) patch["metadata"][key] = body["metadata"][key];
    }
  }
  (void)patch.dump();
}

// node_status_legacy(): {"Status": …}.
void node_status(const edgehub::wire::Message& m) {
  const auto body = content_object(m);
  if (!body.is_object() || !body.contains("Status")) return;
  const json patch = {{"status", body["Status"]}};
  (void)patch.dump();
}

// pod_status_legacy(): {"UID","Name","Status"} or an array of them.
void pod_status(const edgehub::wire::Message& m) {
  auto body = content_object(m);
  if (body.is_object()) body = json::array({body});
  if (!body.is_array()) return;
  for (const auto& item : body) {
    if (!item.is_object()) continue;
    const std::string name = item.value("Name", std::string("sample-pod"));
    const json patch = {{"status", item.value("Status", json::object())}};
    (void)patch.dump();
  }
}

// pod(): a mirror pod's insert, and the delete options.
void pod(const edgehub::wire::Message& m) {
  auto body = content_object(m);
  const bool mine = body.is_object() && body.contains("spec") && body["spec"].is_object() &&
                    body["spec"].value("nodeName", "") == "edge-1";
  if (mine) {
    body["apiVersion"] = "v1";
    body["kind"] = "Pod";
    (void)body.dump();
  }
  if (const auto j = m.content_json(); j.is_object()) {
    if (auto g = j.find("gracePeriodSeconds"); g != j.end() && g->is_number_integer()) {
      (void)g->get<std::int64_t>();
    }
    if (auto p = j.find("preconditions"); p != j.end() && p->is_object()) {
      (void)p->value("uid", "");
      (void)p->value("resourceVersion", "");
    }
  }
}

// service_account_token() and event(): the body typed and forwarded.
void typed_body(const edgehub::wire::Message& m) {
  auto body = content_object(m);
  if (!body.is_object()) return;
  body["apiVersion"] = "v1";
  body["kind"] = "Event";
  (void)body.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  edgehub::wire::Message as_string;  // content "…": a patch or object as a JSON string
  as_string.set_content_string(text);
  edgehub::wire::Message embedded;   // content {…}: an object embedded (already depth-checked)
  const bool decoded = [&] {
    auto m = edgehub::wire::decode(R"({"header":{},"route":{},"content":)" + std::string(text) + "}");
    if (m) embedded = std::move(*m);
    return static_cast<bool>(m);
  }();
  for (const auto* m : {&as_string, decoded ? &embedded : nullptr}) {
    if (m == nullptr) continue;
    own_object(*m);
    node_update(*m);
    node_status(*m);
    pod_status(*m);
    pod(*m);
    typed_body(*m);
  }
  return 0;
}

// Decode and encode of a 4 KB pod message, the hub's most common downstream payload.
// Target (issue: foundation): >= 100,000 messages/s per core each way.
#include <benchmark/benchmark.h>
#include <edgehub/wire/builders.hpp>
#include <edgehub/wire/message.hpp>

#include <nlohmann/json.hpp>
#include <string>

namespace {

// A realistic pod (two containers, env, volumes, managedFields) grown to about 4 KB.
std::string pod_message() {
  nlohmann::ordered_json pod = nlohmann::ordered_json::parse(R"({
    "kind":"Pod","apiVersion":"v1",
    "metadata":{"name":"nginx-7c5ddbdf54-x2x9k","namespace":"default","uid":"8a3e6c1e-2f55-4b8e-9d8e-0e1f2a3b4c5d",
      "resourceVersion":"918273","generation":1,"creationTimestamp":"2025-08-06T03:13:20Z",
      "labels":{"app":"nginx","pod-template-hash":"7c5ddbdf54","tier":"edge"},
      "annotations":{"edgehub.io/stamp":"1754450000123456789"},
      "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"nginx-7c5ddbdf54","uid":"0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b","controller":true,"blockOwnerDeletion":true}]},
    "spec":{"volumes":[{"name":"cfg","configMap":{"name":"app-cfg","defaultMode":420}},{"name":"tls","secret":{"secretName":"app-tls","defaultMode":420}}],
      "containers":[{"name":"nginx","image":"nginx:1.27","ports":[{"containerPort":80,"protocol":"TCP"}],
        "env":[{"name":"FROM_CM","valueFrom":{"configMapKeyRef":{"name":"app-cfg","key":"k"}}}],
        "resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"64Mi"}},
        "volumeMounts":[{"name":"cfg","mountPath":"/etc/app"},{"name":"tls","mountPath":"/etc/tls","readOnly":true}],
        "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},
        {"name":"sidecar","image":"busybox:1.36","command":["sh","-c","while true; do sleep 3600; done"],"resources":{},
        "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],
      "restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","nodeName":"edge-1",
      "serviceAccountName":"default","serviceAccount":"default","securityContext":{},"schedulerName":"default-scheduler",
      "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},
                     {"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],
      "priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},
    "status":{"phase":"Pending","qosClass":"Burstable"}})");
  // managedFields make up much of a real pod's size.
  for (int i = 0; pod.dump().size() < 4000; ++i) {
    pod["metadata"]["managedFields"].push_back(
        {{"manager", "kube-controller-manager"}, {"operation", "Update"}, {"apiVersion", "v1"},
         {"time", "2025-08-06T03:13:20Z"}, {"fieldsType", "FieldsV1"},
         {"fieldsV1", {{"f:metadata", {{"f:labels", {{".", nlohmann::json::object()}, {"f:app", nlohmann::json::object()}}}}},
                       {"f:spec", {{"f:containers", {{"k:{\"name\":\"nginx\"}", {{"f:image", nlohmann::json::object()}}}}}}}}}});
  }
  edgehub::wire::Message m;
  m.header.msg_id = edgehub::wire::new_message_id();
  m.header.timestamp = 1754450000123;
  m.header.resource_version = "918273";
  m.route = {.source = "edgecontroller", .group = "resource", .operation = "insert",
             .resource = "default/pod/nginx-7c5ddbdf54-x2x9k"};
  m.content = pod.dump();
  return edgehub::wire::encode(m);
}

void BM_Decode4KPod(benchmark::State& state) {
  const auto payload = pod_message();
  for (auto _ : state) {
    auto m = edgehub::wire::decode(payload);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
  state.counters["payload_bytes"] = static_cast<double>(payload.size());
}
BENCHMARK(BM_Decode4KPod);

void BM_Encode4KPod(benchmark::State& state) {
  const auto m = *edgehub::wire::decode(pod_message());
  std::string out;
  for (auto _ : state) {
    out.clear();
    edgehub::wire::encode_to(m, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_Encode4KPod);

// What a hub does per upstream ACK: decode it and read its parent id.
void BM_DecodeAck(benchmark::State& state) {
  const std::string ack =
      R"({"header":{"msg_id":"9b6c2a51-0e7e-4f0b-a7a1-1b2c3d4e5f60","parent_msg_id":"5f0c6a8e-7d1b-4c2e-9a51-3b6f2f4d8e10","timestamp":1754450000200},"route":{"source":"edgecontroller","group":"resource","operation":"response","resource":"default/pod/nginx-7c5ddbdf54-x2x9k"},"content":"OK"})"
      "\n";
  for (auto _ : state) {
    auto m = edgehub::wire::decode(ack);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAck);

// For comparison: a full DOM parse of the same payload with nlohmann::json.
void BM_NlohmannParse4KPod(benchmark::State& state) {
  const auto payload = pod_message();
  for (auto _ : state) {
    auto j = nlohmann::json::parse(payload);
    benchmark::DoNotOptimize(j);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NlohmannParse4KPod);

}  // namespace

BENCHMARK_MAIN();

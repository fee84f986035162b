// Watch-event decoding rate for ~4 KB pod events: the envelope decoder the hub uses on its
// watch thread, the line splitter over a chunked stream, and a full nlohmann DOM parse for
// comparison.

#include <edgehub/kube/object.hpp>
#include <edgehub/kube/watch_decoder.hpp>

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <string>

namespace {

// Appends instead of `"literal" + std::string`, which trips GCC 12's -Wrestrict false positive.
std::string join(std::string a, const std::string& b) { return a.append(b); }

// A pod the size of a real one with a few containers, labels and managed fields (~4 KB).
std::string pod_event(int i) {
  nlohmann::json pod = {
      {"kind", "Pod"},
      {"apiVersion", "v1"},
      {"metadata",
       {{"name", join("workload-", std::to_string(i))},
        {"namespace", "edge-apps"},
        {"uid", join("a81c65d4-7e34-4efa-b2e2-", std::to_string(100000000000 + i))},
        {"resourceVersion", std::to_string(1000000 + i)},
        {"creationTimestamp", "2026-11-27T00:11:48Z"},
        {"labels", {{"app", "sensor-gateway"}, {"tier", "edge"}, {"pod-template-hash", "6f9c7d8b5"}}},
        {"annotations", {{"kubectl.kubernetes.io/last-applied-configuration", std::string(900, 'x')}}}}},
      {"spec",
       {{"nodeName", join("edge-node-", std::to_string(i % 5000))},
        {"restartPolicy", "Always"},
        {"containers", nlohmann::json::array()}}},
      {"status", {{"phase", "Running"}, {"podIP", "10.244.3.17"}, {"hostIP", "192.168.10.4"}}}};
  for (int c = 0; c < 3; ++c) {
    pod["spec"]["containers"].push_back(
        {{"name", join("c", std::to_string(c))},
         {"image", join("registry.example.com/edge/sensor-gateway:v1.4.", std::to_string(c))},
         {"args", {"--listen=:8080", "--upstream=mqtt://broker:1883", "--log-level=info"}},
         {"env", {{{"name", "NODE_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "spec.nodeName"}}}}}},
                  {{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}}}},
         {"resources", {{"limits", {{"cpu", "500m"}, {"memory", "256Mi"}}},
                        {"requests", {{"cpu", "100m"}, {"memory", "64Mi"}}}}},
         {"volumeMounts", {{{"name", "config"}, {"mountPath", "/etc/gateway"}, {"readOnly", true}}}},
         {"terminationMessagePath", "/dev/termination-log"},
         {"imagePullPolicy", "IfNotPresent"}});
  }
  std::string line = nlohmann::json{{"type", "MODIFIED"}, {"object", pod}}.dump();
  // Pad to 4 KB with a label so every event has the same size.
  if (line.size() < 4096) {
    pod["metadata"]["labels"]["padding"] = std::string(4096 - line.size() - 13, 'p');
    line = nlohmann::json{{"type", "MODIFIED"}, {"object", pod}}.dump();
  }
  return line + "\n";
}

void BM_DecodeEnvelope(benchmark::State& state) {
  std::string line = pod_event(1);
  for (auto _ : state) {
    auto ev = edgehub::kube::decode_watch_event(std::string_view(line).substr(0, line.size() - 1));
    benchmark::DoNotOptimize(ev);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(line.size()));
  state.counters["event_bytes"] = static_cast<double>(line.size());
}
BENCHMARK(BM_DecodeEnvelope);

void BM_DecodeStreamChunked(benchmark::State& state) {
  std::string stream;
  constexpr int kEvents = 256;
  for (int i = 0; i < kEvents; ++i) stream += pod_event(i);
  const std::size_t chunk = static_cast<std::size_t>(state.range(0));
  std::size_t seen = 0;
  for (auto _ : state) {
    edgehub::kube::WatchDecoder dec;
    auto sink = [&](edgehub::kube::WatchEvent&& ev) {
      seen += ev.object.node_name.size();
      return true;
    };
    for (std::size_t pos = 0; pos < stream.size(); pos += chunk) {
      auto r = dec.feed(std::string_view(stream).substr(pos, chunk), sink);
      if (!r) state.SkipWithError("decode failed");
    }
  }
  benchmark::DoNotOptimize(seen);
  state.SetItemsProcessed(state.iterations() * kEvents);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(stream.size()));
}
BENCHMARK(BM_DecodeStreamChunked)->Arg(1400)->Arg(16384);

void BM_FullDomParse(benchmark::State& state) {
  std::string line = pod_event(1);
  for (auto _ : state) {
    auto j = nlohmann::json::parse(line);
    benchmark::DoNotOptimize(j);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FullDomParse);

}  // namespace

BENCHMARK_MAIN();

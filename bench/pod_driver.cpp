// pod_driver: produces pod watch events at a steady rate, for the hub benchmarks.
//
// Creates --pods pods spread over the nodes edge-0 … edge-<nodes-1> (at --rate per second;
// skipped with --patch-only, for pods an earlier run created), then merge-patches them round-robin at --rate per second for --duration seconds. Each
// request writes the current time (Unix ns) into the `edgehub.io/stamp` annotation, which
// edgehub-sim turns into API change → edge latency. One patch is one MODIFIED event, so the
// hub receives --rate events per second for the pods' nodes. Requests go through
// kube::Client over a pool of --concurrency keep-alive connections; each is started at its
// scheduled time (start + i / rate), so a slow answer does not lower the rate unless all
// connections are busy (then the report says how far behind the schedule it fell).
//
//   pod_driver --kubeconfig FILE --nodes N [--pods 1000] [--rate 2000] [--duration 30]
//              [--concurrency 64] [--namespace default] [--prefix drv] [--patch-only]

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <edgehub/kube/client.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace kube = edgehub::kube;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string kubeconfig;
  std::string ns = "default";
  std::string prefix = "drv";
  long nodes = 0;
  long pods = 1000;
  double rate = 2000;
  double duration = 30;
  long concurrency = 64;
  bool patch_only = false;
};

// Named options: GCC 12 destroys aggregate temporaries in a co_await expression twice.
const kube::RequestOptions kPlain{};

std::string stamp_now() {
  return std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

std::string pod_name(const Options& o, long i) { return o.prefix + "-" + std::to_string(i); }

// Spreads pods over the nodes (a stride prime to typical fleet sizes).
std::string node_of(const Options& o, long i) {
  return "edge-" + std::to_string((i * 7919) % o.nodes);
}

std::string pod_body(const Options& o, long i) {
  return R"({"metadata":{"name":")" + pod_name(o, i) + R"(","annotations":{"edgehub.io/stamp":")" +
         stamp_now() + R"("}},"spec":{"nodeName":")" + node_of(o, i) +
         R"(","containers":[{"name":"c","image":"busybox"}]}})";
}

std::string patch_body() {
  return R"({"metadata":{"annotations":{"edgehub.io/stamp":")" + stamp_now() + R"("}}})";
}

struct Phase {
  const char* name;
  long requests;
  long next = 0;  // next request index to take
  long ok = 0;
  long failed = 0;
  std::vector<double> latency_ms;
  double max_behind_ms = 0;  // how late a request started against its schedule
  Clock::time_point start;
  Clock::time_point end;
  std::string first_error;
};

asio::awaitable<void> worker(kube::Client& client, const Options& o, Phase& phase, bool create) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto pods = kube::resources::pods();
  for (;;) {
    const long i = phase.next++;
    if (i >= phase.requests) break;
    const auto due = phase.start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(static_cast<double>(i) / o.rate));
    if (due > Clock::now()) {
      timer.expires_at(due);
      co_await timer.async_wait(asio::use_awaitable);
    } else {
      phase.max_behind_ms = std::max(
          phase.max_behind_ms, std::chrono::duration<double, std::milli>(Clock::now() - due).count());
    }
    const auto sent = Clock::now();
    const long pod = i % o.pods;
    kube::Result<kube::Object> result = kube::Object{};
    if (create) {
      result = co_await client.create(pods, o.ns, pod_body(o, pod), kPlain);
    } else {
      result = co_await client.patch(pods, o.ns, pod_name(o, pod), kube::PatchType::Merge,
                                     patch_body(), kPlain);
    }
    phase.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - sent).count());
    if (result) {
      ++phase.ok;
    } else {
      if (phase.failed++ == 0) phase.first_error = result.error().describe();
    }
    phase.end = Clock::now();
  }
}

void run_phase(asio::io_context& io, kube::Client& client, const Options& o, Phase& phase,
               bool create) {
  phase.start = Clock::now();
  phase.end = phase.start;
  for (long w = 0; w < o.concurrency; ++w) {
    asio::co_spawn(io, worker(client, o, phase, create), asio::detached);
  }
  io.restart();
  io.run();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void report(const Phase& phase) {
  const double seconds = std::chrono::duration<double>(phase.end - phase.start).count();
  std::printf(
      "%s: %ld ok, %ld failed in %.2f s (%.0f /s); request p50 %.2f ms, p99 %.2f ms; "
      "at most %.1f ms behind schedule\n",
      phase.name, phase.ok, phase.failed, seconds,
      seconds > 0 ? static_cast<double>(phase.ok) / seconds : 0.0, percentile(phase.latency_ms, 0.5),
      percentile(phase.latency_ms, 0.99), phase.max_behind_ms);
  if (phase.failed > 0) std::printf("%s: first failure: %s\n", phase.name, phase.first_error.c_str());
  std::fflush(stdout);
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "pod_driver: %s\nusage: pod_driver --kubeconfig FILE --nodes N [--pods 1000] "
               "[--rate 2000] [--duration 30] [--concurrency 64] [--namespace default] "
               "[--prefix drv] [--patch-only]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--patch-only") {
      o.patch_only = true;
      continue;
    }
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    try {
      if (flag == "--kubeconfig") o.kubeconfig = value;
      else if (flag == "--namespace") o.ns = value;
      else if (flag == "--prefix") o.prefix = value;
      else if (flag == "--nodes") o.nodes = std::stol(value);
      else if (flag == "--pods") o.pods = std::stol(value);
      else if (flag == "--rate") o.rate = std::stod(value);
      else if (flag == "--duration") o.duration = std::stod(value);
      else if (flag == "--concurrency") o.concurrency = std::stol(value);
      else usage(("unknown flag " + flag).c_str());
    } catch (const std::exception&) {
      usage(("bad value for " + flag + ": " + value).c_str());
    }
  }
  if (o.kubeconfig.empty()) usage("--kubeconfig is required");
  if (o.nodes <= 0 || o.pods <= 0 || o.rate <= 0 || o.duration < 0 || o.concurrency <= 0) {
    usage("--nodes, --pods, --rate and --concurrency must be positive");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  auto config = kube::load_kubeconfig(o.kubeconfig);
  if (!config) {
    std::fprintf(stderr, "pod_driver: %s\n", config.error().describe().c_str());
    return 1;
  }
  asio::io_context io(1);
  kube::ClientOptions client_options;
  client_options.qps = 0;  // the schedule is the limit
  client_options.max_idle_connections = static_cast<std::size_t>(o.concurrency);
  auto client = kube::Client::make(io.get_executor(), *config, client_options);
  if (!client) {
    std::fprintf(stderr, "pod_driver: %s\n", client.error().describe().c_str());
    return 1;
  }
  Phase create{.name = "create", .requests = o.patch_only ? 0 : o.pods};
  if (create.requests > 0) {
    run_phase(io, **client, o, create, true);
    report(create);
  }
  Phase patch{.name = "patch", .requests = static_cast<long>(o.rate * o.duration)};
  if (patch.requests > 0) {
    run_phase(io, **client, o, patch, false);
    report(patch);
  }
  return create.failed + patch.failed == 0 ? 0 : 1;
}

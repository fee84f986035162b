// Watch fan-out of the devapi server: 10,000 pod updates delivered to 20 HTTP watchers.
// Reports delivered events per second (updates x watchers / wall time until the last watcher
// has read the last event).
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <edgehub/devapi/server.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using edgehub::devapi::resource_by_name;
using nlohmann::json;

constexpr int kUpdates = 10000;
constexpr int kWatchers = 20;
constexpr std::string_view kNeedle = R"("type":"MODIFIED")";

// Counts MODIFIED events on one watch connection (needle search across read boundaries).
struct Reader {
  explicit Reader(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  std::array<char, 65536> buf{};
  std::string tail;
  int events = 0;
};

void read_loop(const std::shared_ptr<Reader>& r, std::atomic<int>& done) {
  r->socket.async_read_some(
      asio::buffer(r->buf), [r, &done](boost::system::error_code ec, std::size_t n) {
        if (ec) return;
        // Needles inside this read, plus one that straddles the previous read.
        const std::string_view data(r->buf.data(), n);
        std::string seam = r->tail;
        seam.append(data.substr(0, std::min(n, kNeedle.size() - 1)));
        if (seam.find(kNeedle) != std::string::npos) ++r->events;
        for (auto pos = data.find(kNeedle); pos != std::string_view::npos;
             pos = data.find(kNeedle, pos + kNeedle.size())) {
          ++r->events;
        }
        r->tail = std::string(data.substr(n > kNeedle.size() - 1 ? n - (kNeedle.size() - 1) : 0));
        if (r->events >= kUpdates) {
          done.fetch_add(1);
          return;
        }
        read_loop(r, done);
      });
}

void BM_WatchFanout(benchmark::State& state) {
  const auto& pods = resource_by_name("pods");
  for (auto _ : state) {
    state.PauseTiming();
    edgehub::devapi::ServerOptions options;
    options.watch_queue_limit = kUpdates * 2;
    options.watch_history = kUpdates * 2;
    edgehub::devapi::Server server(options);
    server.start();
    server.store().create(
        pods, "default",
        {{"metadata", {{"name", "p"}, {"labels", {{"n", "0"}}}}},
         {"spec", {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}});
    const std::string request = "GET /api/v1/namespaces/default/pods?watch=1&resourceVersion=" +
                                std::to_string(server.store().current_resource_version()) +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    asio::io_context ioc;
    std::atomic<int> done{0};
    std::vector<std::shared_ptr<Reader>> readers;
    for (int i = 0; i < kWatchers; ++i) {
      auto r = std::make_shared<Reader>(ioc);
      r->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
      asio::write(r->socket, asio::buffer(request));
      read_loop(r, done);
      readers.push_back(r);
    }
    // Every watch is registered once the store counts it (no clock involved).
    while (server.store().watcher_count() < static_cast<std::size_t>(kWatchers)) {
      ioc.poll();
      std::this_thread::yield();
    }
    std::thread client([&ioc] { ioc.run(); });
    state.ResumeTiming();

    for (int i = 0; i < kUpdates; ++i) {
      server.store().patch(pods, "default", "p", edgehub::devapi::PatchType::kMerge,
                           {{"metadata", {{"labels", {{"n", std::to_string(i + 1)}}}}}});
    }
    client.join();  // returns once every reader has counted kUpdates events

    state.PauseTiming();
    if (done.load() != kWatchers) state.SkipWithError("a watcher missed events");
    readers.clear();
    server.stop();
    state.ResumeTiming();
  }
  state.counters["events_per_second"] = benchmark::Counter(
      static_cast<double>(kUpdates) * kWatchers, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["updates_per_second"] =
      benchmark::Counter(kUpdates, benchmark::Counter::kIsIterationInvariantRate);
}

// The server logs at info on every start; keep the benchmark output readable.
const bool kQuiet = (spdlog::set_level(spdlog::level::warn), true);

BENCHMARK(BM_WatchFanout)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace

BENCHMARK_MAIN();

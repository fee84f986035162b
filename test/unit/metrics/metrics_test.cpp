#include <edgehub/metrics/metrics.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "process.hpp"

namespace edgehub::metrics {
namespace {

std::string sample_exposition() {
  Registry r;
  auto& messages = r.counter("edgehub_messages_total", "Messages by direction and operation.",
                             {"direction", "operation"});
  messages.with({"down", "insert"}).inc(3);
  messages.with({"up", "keepalive"}).inc();
  r.gauge("edgehub_sessions", "Edge sessions open now.").with({}).set(42);
  auto& ack = r.histogram("edgehub_ack_latency_seconds", "Send to ACK.", latency_buckets());
  ack.with({}).observe(0.0003);
  ack.with({}).observe(0.02);
  ack.with({}).observe(60);
  r.counter("edgehub_rejected_connections_total", "Refused connections by reason.", {"reason"})
      .with({"cn \"mismatch\"\nx"})
      .inc();
  r.gauge_callback("edgehub_process_up", "Always 1.", [] { return 1.0; });
  return r.expose();
}

TEST(Metrics, ExpositionFormat) {
  const auto text = sample_exposition();
  EXPECT_NE(text.find("# TYPE edgehub_messages_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("edgehub_messages_total{direction=\"down\",operation=\"insert\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("edgehub_sessions 42\n"), std::string::npos);
  EXPECT_NE(text.find("edgehub_ack_latency_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("edgehub_ack_latency_seconds_bucket{le=\"0.025\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("edgehub_ack_latency_seconds_bucket{le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("edgehub_ack_latency_seconds_count 3\n"), std::string::npos);
  EXPECT_NE(text.find(R"(reason="cn \"mismatch\"\nx")"), std::string::npos) << text;
  EXPECT_NE(text.find("edgehub_process_up 1\n"), std::string::npos);
}

// The real Prometheus linter accepts what we expose.
TEST(Metrics, PromtoolAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (!std::ifstream(promtool)) GTEST_SKIP() << "promtool not installed (scripts/install-deps.sh)";
  const auto path = ::testing::TempDir() + "metrics.txt";
  std::ofstream(path) << sample_exposition();
  const auto r = test::run({"/bin/sh", "-c", std::string(promtool) + " check metrics < " + path});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(Metrics, ConcurrentUpdatesAreCounted) {
  Registry r;
  auto& c = r.counter("edgehub_test_total", "Test.").with({});
  auto& h = r.histogram("edgehub_test_seconds", "Test.", {0.5}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(1.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_DOUBLE_EQ(h.sum(), 40000.0);
}

TEST(Metrics, MisuseIsAProgrammingError) {
  Registry r;
  auto& f = r.counter("edgehub_x_total", "X.", {"a"});
  EXPECT_THROW(f.with({}), std::logic_error);
  EXPECT_THROW(r.gauge("edgehub_x_total", "again"), std::logic_error);
}

}  // namespace
}  // namespace edgehub::metrics

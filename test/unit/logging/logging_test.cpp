#include <edgehub/logging/logging.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace edgehub::logging {
namespace {

TEST(Logging, JsonFormatWritesOneParsableObjectPerLine) {
  std::ostringstream out;
  setup("info", "json", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::info("node {} refused: {}", "edge-1", "CN \"system:node:edge-2\" does not match");
  spdlog::debug("not shown at info");
  spdlog::default_logger()->flush();
  std::istringstream lines(out.str());
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  const auto record = nlohmann::json::parse(line);
  EXPECT_EQ(record["level"], "info");
  EXPECT_EQ(record["msg"], "node edge-1 refused: CN \"system:node:edge-2\" does not match");
  EXPECT_TRUE(record["time"].get<std::string>().ends_with("Z"));
  EXPECT_FALSE(std::getline(lines, line)) << "debug line leaked: " << line;
}

TEST(Logging, TextFormatHonoursTheLevel) {
  std::ostringstream out;
  setup("warn", "text", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  spdlog::info("hidden");
  spdlog::warn("keepalive timeout for node edge-7");
  spdlog::default_logger()->flush();
  EXPECT_EQ(out.str().find("hidden"), std::string::npos);
  EXPECT_NE(out.str().find("warning keepalive timeout for node edge-7"), std::string::npos);
}

}  // namespace
}  // namespace edgehub::logging

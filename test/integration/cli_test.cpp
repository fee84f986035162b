// The edgehub program as an operator uses it: --check, --version, config-reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "process.hpp"

namespace edgehub::test {
namespace {

std::string source(const std::string& relative) {
  return std::string(EDGEHUB_SOURCE_DIR) + "/" + relative;
}

std::string temp_file(const std::string& name, const std::string& text) {
  const auto path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(EdgehubCli, ShippedConfigPassesCheck) {
  const auto r = run({binary("edgehub"), "--config", source("config/edgehub.yaml"), "--check"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("OK"), std::string::npos);
}

TEST(EdgehubCli, BrokenConfigFailsCheckNamingTheKey) {
  const auto path = temp_file("broken.yaml", "hub:\n  listen: \"10000\"\nlog:\n  level: loud\n");
  const auto r = run({binary("edgehub"), "--config", path, "--check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path + ": hub.listen: \"10000\" is not host:port"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(path + ": log.level: \"loud\" is not one of"), std::string::npos) << r.err;
}

TEST(EdgehubCli, FlagValuesAreValidatedToo) {
  const auto r = run({binary("edgehub"), "--config", source("config/edgehub.yaml"), "--listen",
                      "10000", "--check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("command line: --listen: \"10000\" is not host:port"), std::string::npos)
      << r.err;
}

TEST(EdgehubCli, VersionAndHelp) {
  auto r = run({binary("edgehub"), "--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.out.empty());
  r = run({binary("edgehub"), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--dev", "--kubeconfig", "--listen", "--metrics-listen", "--hub-id",
                           "--log-level", "--log-format", "--config", "--check"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
}

TEST(EdgehubCli, UnknownFlagIsRefused) {
  const auto r = run({binary("edgehub"), "--no-such-flag"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--no-such-flag"), std::string::npos) << r.err;
}

TEST(EdgehubCli, ConfigReferenceMatchesTheDocs) {
  const auto r = run({binary("edgehub"), "config-reference"});
  ASSERT_EQ(r.exit_code, 0);
  std::ifstream in(source("docs/configuration.md"));
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_EQ(r.out, doc.str());
}

TEST(EdgehubCli, CertsInitThenTokenCreate) {
  const auto dir = ::testing::TempDir() + "cli-certs";
  std::filesystem::remove_all(dir);
  auto r = run({binary("edgehub"), "certs", "init", "--dir", dir, "--san", "hub.example.com"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("created " + dir + "/ca.crt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("issued  " + dir + "/server.crt"), std::string::npos) << r.out;
  r = run({binary("edgehub"), "certs", "init", "--dir", dir, "--san", "hub.example.com"});
  EXPECT_NE(r.out.find("kept    " + dir + "/server.crt"), std::string::npos) << r.out;

  r = run({binary("edgehub"), "token", "create", "--ca-cert", dir + "/ca.crt", "--ca-key",
           dir + "/ca.key", "--ttl", "1h"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '.'), 3) << r.out;
  EXPECT_EQ(r.out.find('.'), 64u) << "starts with the CA hash";

  r = run({binary("edgehub"), "token", "create", "--ca-cert", dir + "/nope.crt", "--ca-key",
           dir + "/ca.key"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("CA certificate " + dir + "/nope.crt: cannot be read"), std::string::npos)
      << r.err;
  r = run({binary("edgehub"), "token", "create", "--ca-cert", dir + "/ca.crt", "--ca-key",
           dir + "/ca.key", "--ttl", "soon"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ttl: \"soon\" is not a duration"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace edgehub::test

#include <edgehub/config/config.hpp>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace edgehub::config {
namespace {

std::string source_file(const std::string& relative) {
  return std::string(EDGEHUB_SOURCE_DIR) + "/" + relative;
}

Errors errors_of(const std::string& yaml, const Overrides& overrides = {}) {
  auto result = load_text(yaml, "test.yaml", overrides);
  EXPECT_FALSE(result.has_value()) << yaml;
  return result ? Errors{} : result.error();
}

std::string first(const Errors& errors) { return errors.empty() ? "" : errors.front().to_string(); }

TEST(Config, ShippedDevConfigIsValid) {
  auto result = load(source_file("config/edgehub.yaml"));
  ASSERT_TRUE(result) << first(result.error());
  EXPECT_EQ(result->hub.listen, (HostPort{"127.0.0.1", 10000}));
  EXPECT_EQ(result->metrics.listen, (HostPort{"127.0.0.1", 9100}));
  EXPECT_EQ(result->dev.api_listen.port, 6443);
}

TEST(Config, ShippedProductionConfigIsValidWithTheDownwardApi) {
  ::setenv("POD_NAME", "edgehub-7d9f-abcde", 1);
  ::setenv("POD_NAMESPACE", "edgehub", 1);
  ::setenv("POD_IP", "10.1.2.3", 1);
  auto result = load(source_file("config/edgehub.production.yaml"));
  ::unsetenv("POD_NAME");
  ::unsetenv("POD_NAMESPACE");
  ::unsetenv("POD_IP");
  ASSERT_TRUE(result) << first(result.error());
  EXPECT_EQ(result->hub.id, "edgehub-7d9f-abcde");
  EXPECT_EQ(result->hub.advertise_address, "10.1.2.3");
  EXPECT_EQ(result->log.format, "json");
  EXPECT_EQ(result->delivery.window, 16u);
  EXPECT_EQ(result->hub.cert_service.ca_secret, "edgehub/casecret");
}

TEST(Config, ProductionConfigWithoutPodNameNamesTheVariable) {
  ::unsetenv("POD_NAME");
  auto result = load(source_file("config/edgehub.production.yaml"));
  ASSERT_FALSE(result);
  EXPECT_NE(first(result.error()).find("hub.id: environment variable POD_NAME is not set"),
            std::string::npos)
      << first(result.error());
}

TEST(Config, SharedPkiSecretsAreNamespaceSlashNameAndTheTokenOutlivesItsRefresh) {
  auto errors = errors_of(
      "hub:\n  certService:\n    caSecret: casecret\n    tokenSecret: kubeedge/tokensecret\n"
      "    tokenRefreshInterval: 12h\n    tokenTTL: 12h\n");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].to_string(),
            R"(test.yaml: hub.certService.caSecret: "casecret" must be namespace/name)");
  EXPECT_EQ(errors[1].key, "hub.certService.tokenTTL");
  auto ok = load_text("hub:\n  certService:\n    caSecret: kubeedge/casecret\n", "test.yaml");
  ASSERT_TRUE(ok) << first(ok.error());
  EXPECT_EQ(ok->hub.cert_service.ca_secret, "kubeedge/casecret");
  EXPECT_EQ(ok->hub.cert_service.token_ttl, std::chrono::hours(24));
}

TEST(Config, EveryKeyHasADefault) {
  auto result = load("");
  ASSERT_TRUE(result) << first(result.error());
  EXPECT_EQ(result->hub.listen, (HostPort{"0.0.0.0", 10000}));
  EXPECT_EQ(result->hub.keepalive_timeout, std::chrono::seconds(30));
  EXPECT_EQ(result->hub.id, "edgehub-0");  // ${POD_NAME:-edgehub-0}
  EXPECT_EQ(result->hub.max_message_bytes, 8u << 20);
  EXPECT_EQ(result->log.level, "info");
}

TEST(Config, ErrorNamesFileKeyAndReason) {
  const auto errors = errors_of("hub:\n  listen: \"10000\"\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), R"(test.yaml: hub.listen: "10000" is not host:port)");
}

TEST(Config, CollectsEveryProblem) {
  const auto errors = errors_of(
      "hub:\n  listen: nope\n  keepaliveTimeout: soon\n  maxMessageBytes: 8 parsecs\n"
      "delivery:\n  window: 500\nlog:\n  level: loud\n  format: xml\n");
  std::string all;
  for (const auto& e : errors) all += e.to_string() + "\n";
  EXPECT_EQ(errors.size(), 6u) << all;
  EXPECT_NE(all.find("hub.keepaliveTimeout: \"soon\" is not a duration"), std::string::npos) << all;
  EXPECT_NE(all.find("hub.maxMessageBytes: \"8 parsecs\" is not a size"), std::string::npos) << all;
  EXPECT_NE(all.find("delivery.window: \"500\" is out of range [1, 64]"), std::string::npos) << all;
  EXPECT_NE(all.find("log.level: \"loud\" is not one of trace, debug, info, warn, error"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("log.format: \"xml\" is not one of text, json"), std::string::npos) << all;
}

TEST(Config, UnknownKeysAreRefusedWithTheirLine) {
  const auto errors = errors_of("hub:\n  lisen: 127.0.0.1:1\n");
  EXPECT_EQ(first(errors), "test.yaml: hub.lisen: unknown key (line 2)");
  EXPECT_EQ(first(errors_of("hubb:\n  x: 1\n")), "test.yaml: hubb: unknown key (line 1)");
}

TEST(Config, StructuralMistakes) {
  EXPECT_EQ(first(errors_of("hub: 5\n")), "test.yaml: hub: is a section and needs keys below it");
  EXPECT_EQ(first(errors_of("hub:\n  listen:\n")), "test.yaml: hub.listen: has no value");
  EXPECT_EQ(first(errors_of("hub:\n  listen: [a, b]\n")),
            "test.yaml: hub.listen: needs a single value, not a list or map");
  EXPECT_EQ(first(errors_of("hub:\n  proxy:\n    trustedAddresses: 1.2.3.4\n")),
            "test.yaml: hub.proxy.trustedAddresses: needs a list");
  EXPECT_EQ(first(errors_of("- a\n- b\n")),
            "test.yaml: the top level must be a map of sections (hub:, kube:, ...)");
  EXPECT_NE(first(errors_of("hub: {listen: [\n")).find("test.yaml: line "), std::string::npos);
}

TEST(Config, EnvironmentSubstitution) {
  ::setenv("EDGEHUB_TEST_PORT", "10500", 1);
  auto result = load_text("hub:\n  listen: 127.0.0.1:${EDGEHUB_TEST_PORT}\n"
                          "  id: ${EDGEHUB_TEST_UNSET:-fallback-1}\n  namespace: x$${y}\n",
                          "test.yaml");
  ::unsetenv("EDGEHUB_TEST_PORT");
  // `x${y}` is a literal and not a valid namespace: proves $${ is not expanded.
  ASSERT_FALSE(result);
  EXPECT_EQ(first(result.error()),
            "test.yaml: hub.namespace: \"x${y}\" is not a valid namespace name");
  result = load_text("hub:\n  id: ${EDGEHUB_TEST_UNSET:-fallback-1}\n", "test.yaml");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->hub.id, "fallback-1");
  EXPECT_EQ(first(errors_of("hub:\n  id: ${EDGEHUB_TEST_UNSET}\n")),
            "test.yaml: hub.id: environment variable EDGEHUB_TEST_UNSET is not set");
}

TEST(Config, FlagsOverrideTheFileAndNameTheFlag) {
  Overrides o;
  o.listen = "127.0.0.1:20000";
  o.hub_id = "replica-b";
  o.log_level = "debug";
  o.kubeconfig = "/tmp/kc";
  o.dev = true;
  auto result = load(source_file("config/edgehub.yaml"), o);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->hub.listen.port, 20000);
  EXPECT_EQ(result->hub.id, "replica-b");
  EXPECT_EQ(result->log.level, "debug");
  EXPECT_EQ(result->kube.kubeconfig, "/tmp/kc");
  EXPECT_TRUE(result->dev_mode);
  Overrides bad;
  bad.metrics_listen = "localhost";
  EXPECT_EQ(first(errors_of("", bad)), R"(command line: --metrics-listen: "localhost" is not host:port)");
}

TEST(Config, CrossFieldRules) {
  EXPECT_EQ(first(errors_of("hub:\n  proxy:\n    enabled: true\n")),
            "test.yaml: hub.proxy.trustedAddresses: must name the ingress addresses when "
            "hub.proxy.enabled (else anyone could claim any node); better, authenticate the "
            "ingress with hub.proxy.clientCAFile");
  // Mutual TLS with the ingress: its names are required and cannot be an edge's; addresses
  // become optional.
  EXPECT_EQ(first(errors_of("hub:\n  proxy:\n    enabled: true\n    clientCAFile: /ca.crt\n")),
            "test.yaml: hub.proxy.clientNames: must name the CN of the ingress's client "
            "certificate when hub.proxy.clientCAFile is set");
  EXPECT_EQ(first(errors_of("hub:\n  proxy:\n    enabled: true\n    clientCAFile: /ca.crt\n"
                            "    clientNames: [\"system:node:edge-1\"]\n")),
            "test.yaml: hub.proxy.clientNames: \"system:node:edge-1\" is not an ingress's name (an "
            "edge's CN is system:node:<name>)");
  EXPECT_EQ(first(errors_of("hub:\n  tls:\n    certFile: \"\"\n  proxy:\n    enabled: true\n"
                            "    clientCAFile: /ca.crt\n    clientNames: [ingress-nginx]\n")),
            "test.yaml: hub.tls.certFile: is required with hub.proxy.clientCAFile (the edge port "
            "speaks TLS to the ingress)");
  const auto mtls = load_text("hub:\n  proxy:\n    enabled: true\n    clientCAFile: /ca.crt\n"
                              "    clientNames: [ingress-nginx]\n",
                              "test.yaml", {});
  ASSERT_TRUE(mtls.has_value()) << first(mtls.error());
  EXPECT_EQ(mtls->hub.proxy.client_names, std::vector<std::string>{"ingress-nginx"});
  EXPECT_EQ(first(errors_of("hub:\n  id: Edge_Hub\n")),
            "test.yaml: hub.id: \"Edge_Hub\" must be a DNS subdomain name (lower-case letters, "
            "digits, '-', '.')");
  EXPECT_EQ(first(errors_of("hub:\n  listen: 127.0.0.1:9100\nmetrics:\n  listen: 127.0.0.1:9100\n")),
            "test.yaml: metrics.listen: is the same address as hub.listen");
  EXPECT_EQ(first(errors_of("hub:\n  tls:\n    certFile: \"\"\n")),
            "test.yaml: hub.tls.certFile: is required unless hub.proxy.enabled");
  EXPECT_EQ(first(errors_of("hub:\n  singleThread: true\n  ioThreads: 2\n")),
            "test.yaml: hub.ioThreads: must be 0 or 1 with hub.singleThread (one thread runs "
            "everything)");
  EXPECT_EQ(first(errors_of("hub:\n  leaseWriteInterval: 31s\n")),
            "test.yaml: hub.leaseWriteInterval: must be at most 30s: with the edges' 10 s "
            "renewals, a Lease would go unwritten for longer than kube-controller-manager's 40 s "
            "grace period and its node turn NotReady");
  const auto single = load_text("hub:\n  singleThread: true\n", "test.yaml", {});
  ASSERT_TRUE(single.has_value()) << first(single.error());
  EXPECT_TRUE(single->hub.single_thread);
  EXPECT_EQ(single->hub.lease_write_interval.count(), 0) << "every renewal written by default";
}

TEST(Config, MissingFile) {
  auto result = load("/nonexistent/edgehub.yaml");
  ASSERT_FALSE(result);
  EXPECT_EQ(first(result.error()),
            "/nonexistent/edgehub.yaml: cannot be read (missing file or no permission)");
}

TEST(ConfigValues, HostPort) {
  EXPECT_EQ(*parse_host_port("[::1]:443"), (HostPort{"::1", 443}));
  EXPECT_EQ(*parse_host_port(":10000"), (HostPort{"", 10000}));
  EXPECT_EQ(parse_host_port("[::1]:443")->to_string(), "[::1]:443");
  EXPECT_EQ(parse_host_port("h:70000").error().text, "\"h:70000\" has a port above 65535");
  EXPECT_FALSE(parse_host_port("::1:443"));
  EXPECT_FALSE(parse_host_port("host:"));
  EXPECT_FALSE(parse_host_port("a b:1"));
}

TEST(ConfigValues, DurationsAndSizes) {
  EXPECT_EQ(*parse_duration("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(*parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*parse_duration("15"), std::chrono::seconds(15));
  EXPECT_FALSE(parse_duration("1d"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_EQ(format_duration(std::chrono::seconds(90)), "90s");
  EXPECT_EQ(format_duration(std::chrono::minutes(5)), "5m");
  EXPECT_EQ(*parse_size("8MiB"), 8u << 20);
  EXPECT_EQ(*parse_size("4096"), 4096u);
  EXPECT_FALSE(parse_size("8MB"));
  EXPECT_EQ(format_size(512u << 10), "512KiB");
}

// docs/configuration.md is generated from the key table; it must not drift from the code.
TEST(Config, ReferenceDocumentIsCurrent) {
  std::ifstream in(source_file("docs/configuration.md"));
  ASSERT_TRUE(in) << "docs/configuration.md is missing: run `edgehub config-reference > "
                     "docs/configuration.md`";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), reference_markdown())
      << "docs/configuration.md is stale: run `build/release/edgehub config-reference > "
         "docs/configuration.md`";
  for (const auto& key : keys()) {
    EXPECT_NE(text.str().find("`" + key + "`"), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace edgehub::config

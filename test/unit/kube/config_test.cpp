// kubeconfig and in-cluster loading; every failure names the file and the field.

#include "temp_dir.hpp"

#include <edgehub/kube/config.hpp>

#include <gtest/gtest.h>

namespace edgehub::kube {
namespace {

using testing::TempDir;

// base64 of "CA-PEM", "CERT-PEM", "KEY-PEM"
constexpr const char* kCaB64 = "Q0EtUEVN";
constexpr const char* kCertB64 = "Q0VSVC1QRU0=";
constexpr const char* kKeyB64 = "S0VZLVBFTQ==";

std::string kubeconfig(const std::string& user_block, const std::string& cluster_extra = {}) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
         "clusters:\n"
         "- name: other\n  cluster:\n    server: https://other:1\n"
         "- name: c1\n  cluster:\n    server: https://api.example:6443\n" + cluster_extra +
         "contexts:\n"
         "- name: main\n  context:\n    cluster: c1\n    user: u1\n    namespace: edge\n"
         "- name: alt\n  context:\n    cluster: other\n    user: u1\n"
         "users:\n"
         "- name: u1\n  user:\n" + user_block;
}

Error load_error(const std::string& path, std::string_view ctx = {}) {
  auto r = load_kubeconfig(path, ctx);
  EXPECT_FALSE(r);
  if (r) return {};
  EXPECT_EQ(r.error().kind, ErrorKind::Config);
  return r.error();
}

TEST(KubeConfig, CurrentContextWithInlineData) {
  TempDir dir;
  auto path = dir.write("kc", kubeconfig(std::string("    client-certificate-data: ") + kCertB64 +
                                             "\n    client-key-data: " + kKeyB64 + "\n",
                                         std::string("    certificate-authority-data: ") + kCaB64 + "\n"));
  auto cfg = load_kubeconfig(path);
  ASSERT_TRUE(cfg) << cfg.error().describe();
  EXPECT_EQ(cfg->scheme, "https");
  EXPECT_EQ(cfg->host, "api.example");
  EXPECT_EQ(cfg->port, "6443");
  EXPECT_EQ(cfg->tls_server_name, "api.example");
  EXPECT_EQ(cfg->ca_pem, "CA-PEM");
  EXPECT_EQ(cfg->client_cert_pem, "CERT-PEM");
  EXPECT_EQ(cfg->client_key_pem, "KEY-PEM");
  EXPECT_EQ(cfg->default_namespace, "edge");
  EXPECT_TRUE(cfg->token.empty());
  EXPECT_FALSE(cfg->insecure_skip_tls_verify);
}

TEST(KubeConfig, NamedContextFilesRelativeToKubeconfigAndToken) {
  TempDir dir;
  dir.write("ca.crt", "CA-FILE");
  dir.write("tok", "  secret-token\n");
  auto path = dir.write("kc", kubeconfig("    tokenFile: tok\n",
                                         "    certificate-authority: ca.crt\n"
                                         "    insecure-skip-tls-verify: true\n"
                                         "    tls-server-name: kubernetes\n"));
  auto cfg = load_kubeconfig(path);
  ASSERT_TRUE(cfg) << cfg.error().describe();
  EXPECT_EQ(cfg->ca_pem, "CA-FILE");
  EXPECT_TRUE(cfg->insecure_skip_tls_verify);
  EXPECT_EQ(cfg->tls_server_name, "kubernetes");
  EXPECT_EQ(cfg->token.current(), "secret-token");

  auto alt = load_kubeconfig(path, "alt");
  ASSERT_TRUE(alt) << alt.error().describe();
  EXPECT_EQ(alt->host, "other");
  EXPECT_EQ(alt->port, "1");
  EXPECT_EQ(alt->default_namespace, "default");
}

TEST(KubeConfig, StaticTokenAndHttp) {
  TempDir dir;
  auto path = dir.write("kc",
                        "current-context: x\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1\n"
                        "contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\n"
                        "users:\n- name: u\n  user:\n    token: abc\n");
  auto cfg = load_kubeconfig(path);
  ASSERT_TRUE(cfg) << cfg.error().describe();
  EXPECT_EQ(cfg->scheme, "http");
  EXPECT_EQ(cfg->port, "80");
  EXPECT_EQ(cfg->token.current(), "abc");
}

struct ErrorCase {
  std::string name;
  std::string text;
  std::string context;
  std::string expected;  // after "kubeconfig <path>"
};

TEST(KubeConfig, ErrorsNameFileAndField) {
  TempDir dir;
  std::vector<ErrorCase> cases = {
      {"client-key", kubeconfig(std::string("    client-certificate-data: ") + kCertB64 +
                                "\n    client-key: missing.key\n"),
       "", ": users[0].user.client-key: file not found: " + dir.file("missing.key")},
      {"client-cert", kubeconfig("    client-certificate: nope.crt\n    client-key-data: QQ==\n"), "",
       ": users[0].user.client-certificate: file not found: " + dir.file("nope.crt")},
      {"ca", kubeconfig("    token: t\n", "    certificate-authority: /nonexistent/ca.crt\n"), "",
       ": clusters[1].cluster.certificate-authority: file not found: /nonexistent/ca.crt"},
      {"ca-data", kubeconfig("    token: t\n", "    certificate-authority-data: '!!!'\n"), "",
       ": clusters[1].cluster.certificate-authority-data: invalid base64"},
      {"key-data", kubeconfig(std::string("    client-certificate-data: ") + kCertB64 +
                              "\n    client-key-data: 'a*b'\n"),
       "", ": users[0].user.client-key-data: invalid base64"},
      {"cert-no-key", kubeconfig(std::string("    client-certificate-data: ") + kCertB64 + "\n"), "",
       ": users[0].user.client-key: missing (client-certificate and client-key go together)"},
      {"token-file", kubeconfig("    tokenFile: /nonexistent/token\n"), "",
       ": users[0].user.tokenFile: file not found: /nonexistent/token"},
      {"no-context", kubeconfig("    token: t\n"), "nope",
       ": context: no entry named \"nope\" in contexts"},
      {"current-context",
       "clusters: []\ncontexts: []\nusers: []\n", "", ": current-context: not set and no context given"},
      {"cluster-missing",
       "current-context: a\ncontexts:\n- name: a\n  context:\n    cluster: gone\n", "",
       ": contexts[0].context.cluster: no entry named \"gone\" in clusters"},
      {"user-missing",
       "current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
       "contexts:\n- name: a\n  context:\n    cluster: c\n    user: who\n", "",
       ": contexts[0].context.user: no entry named \"who\" in users"},
      {"server-missing",
       "current-context: a\nclusters:\n- name: c\n  cluster: {}\ncontexts:\n- name: a\n  context:\n    cluster: c\n",
       "", ": clusters[0].cluster.server: missing"},
      {"server-scheme",
       "current-context: a\nclusters:\n- name: c\n  cluster:\n    server: ftp://h\ncontexts:\n- name: a\n  context:\n    cluster: c\n",
       "", ": clusters[0].cluster.server: unsupported scheme \"ftp\""},
      {"server-port",
       "current-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://h:x1\ncontexts:\n- name: a\n  context:\n    cluster: c\n",
       "", ": clusters[0].cluster.server: bad port in \"https://h:x1\""},
      {"contexts-not-list", "current-context: a\ncontexts: 5\n", "", ": contexts: must be a list"},
      {"yaml", "a: [b\n", "", ": invalid YAML at line"},
      {"not-map", "- a\n", "", ": not a YAML mapping"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto path = dir.write(c.name + ".kc", c.text);
    auto e = load_error(path, c.context);
    std::string prefix = "kubeconfig " + path + c.expected;
    EXPECT_EQ(e.message.substr(0, prefix.size()), prefix) << e.message;
  }
  auto e = load_error(dir.file("absent"));
  EXPECT_EQ(e.message, "kubeconfig " + dir.file("absent") + ": file not found");
}

TEST(KubeConfig, InCluster) {
  TempDir dir;
  InClusterSource src;
  src.token_file = dir.file("token");
  src.ca_file = dir.file("ca.crt");
  src.namespace_file = dir.file("namespace");

  auto err = [&](const InClusterSource& s) {
    auto r = load_in_cluster(s);
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().message;
  };
  EXPECT_EQ(err(src), "in-cluster: KUBERNETES_SERVICE_HOST is not set");
  src.host = "10.96.0.1";
  EXPECT_EQ(err(src), "in-cluster: KUBERNETES_SERVICE_PORT is not set");
  src.port = "443";
  EXPECT_EQ(err(src), "in-cluster: token file " + src.token_file + ": file not found");
  dir.write("token", "tok-1\n");
  EXPECT_EQ(err(src), "in-cluster: CA file " + src.ca_file + ": file not found");
  dir.write("ca.crt", "CA");
  auto cfg = load_in_cluster(src);
  ASSERT_TRUE(cfg) << cfg.error().describe();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->default_namespace, "default");
  EXPECT_EQ(cfg->token.current(), "tok-1");
  EXPECT_EQ(cfg->ca_pem, "CA");

  dir.write("namespace", "edgehub-system\n");
  src.host = "fd00::1";
  cfg = load_in_cluster(src);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->host, "fd00::1");
  EXPECT_EQ(cfg->default_namespace, "edgehub-system");
}

TEST(KubeConfig, TokenFileIsReReadWhenItChanges) {
  TempDir dir;
  auto path = dir.write("token", "first\n");
  auto tok = TokenSource::file(path);
  EXPECT_EQ(tok.current(), "first");
  EXPECT_EQ(tok.current(), "first");
  // Kubelet swaps the file atomically (new inode); a rewrite in place also counts.
  dir.write("token.new", "second-token");
  std::filesystem::rename(dir.file("token.new"), path);
  EXPECT_EQ(tok.current(), "second-token");
  dir.write("token", "third-token-longer");
  EXPECT_EQ(tok.current(), "third-token-longer");
  auto copy = tok;  // copies share the cached state
  EXPECT_EQ(copy.current(), "third-token-longer");
  std::filesystem::remove(path);
  EXPECT_EQ(tok.current(), "third-token-longer");  // keeps the last good token
}

}  // namespace
}  // namespace edgehub::kube

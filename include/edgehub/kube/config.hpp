#pragma once

#include <edgehub/kube/error.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace edgehub::kube {

// Re-reads a bearer token file when it changes (kubelet rotates projected service-account
// tokens in place), or returns a fixed token.
class TokenSource {
 public:
  TokenSource() = default;
  static TokenSource fixed(std::string token);
  static TokenSource file(std::string path);

  // The current token; empty when there is none. On a read failure the last good token is
  // kept (and the failure logged) so that a rotation hiccup does not fail every request.
  std::string current() const;
  bool empty() const;
  const std::string& path() const { return path_; }

 private:
  struct FileState {
    std::mutex mu;
    std::string token;
    std::uint64_t inode = 0, size = 0;
    std::int64_t mtime_ns = -1;
  };
  std::string token_;
  std::string path_;
  std::shared_ptr<FileState> state_ = std::make_shared<FileState>();
};

// Everything needed to reach and authenticate to one API server.
struct ClientConfig {
  std::string server;  // "https://host:port" as configured
  std::string scheme;  // "https" or "http"
  std::string host;
  std::string port;
  std::string tls_server_name;  // SNI / verification name; defaults to host
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
  bool insecure_skip_tls_verify = false;
  TokenSource token;
  std::string default_namespace = "default";
  std::string origin;  // "kubeconfig <path>" or "in-cluster", for messages

  // Splits `server` into scheme/host/port; errors name `origin` and `field`.
  Result<void> set_server(std::string_view url, std::string_view field);
};

// Loads a kubeconfig; `context` empty means current-context. Relative file paths resolve
// against the kubeconfig's folder. Errors read "kubeconfig <path>: <field>: <problem>".
Result<ClientConfig> load_kubeconfig(const std::string& path, std::string_view context = {});

struct InClusterSource {
  std::string host;  // KUBERNETES_SERVICE_HOST
  std::string port;  // KUBERNETES_SERVICE_PORT
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

  static InClusterSource from_environment();
};

Result<ClientConfig> load_in_cluster(const InClusterSource& source = InClusterSource::from_environment());

}  // namespace edgehub::kube

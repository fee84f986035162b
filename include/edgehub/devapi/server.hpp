// devapi: an embedded, in-memory, Kubernetes-compatible API server for `edgehub --dev` and
// tests. Serves list/watch/create/update/patch/delete, status subresources, discovery and
// Status errors the way kube-apiserver does, well enough for client-go style clients and the
// real kubectl. Never used in production mode.
#pragma once

#include <chrono>
#include <cstdint>
#include <edgehub/devapi/store.hpp>
#include <functional>
#include <memory>
#include <string>

namespace edgehub::devapi {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;             // 0: pick a free port; see Server::port()
  std::size_t watch_history = 10000;  // events kept for watches that resume from an RV
  // Events queued for one watch connection before it counts as too slow and is closed with
  // an ERROR event (the store and the other watchers never wait for it).
  std::size_t watch_queue_limit = 10000;
  // Period of BOOKMARK events on watches with allowWatchBookmarks=true. A bookmark is also
  // sent shortly before timeoutSeconds ends.
  std::chrono::milliseconds bookmark_interval{std::chrono::seconds(60)};
  // Watch length when the client sends no timeoutSeconds.
  std::chrono::seconds default_watch_timeout{1800};
  // TLS: both files set -> HTTPS. ca_file is only written into the kubeconfig (otherwise the
  // kubeconfig says insecure-skip-tls-verify).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;
  // Non-empty: every request must carry `Authorization: Bearer <token>` (401 otherwise).
  std::string bearer_token;
  // Non-empty: append one JSON line per resource request (verb, group, resource, subresource,
  // namespace, name, user agent) to this file, so tests can check what a client needed from
  // RBAC. Empty: the EDGEHUB_DEVAPI_REQUEST_LOG environment variable, when set, names the file.
  std::string request_log;
  // Tests: how long to hold the answer to a request (method, target), answered from the
  // state at its arrival. Simulates a slow API server or network for that request only.
  std::function<std::chrono::milliseconds(std::string_view method, std::string_view target)>
      response_delay;
  // Tests: a write (POST, PUT, PATCH, DELETE) for which this returns true is answered 409
  // Conflict without being applied, as kube-apiserver answers the loser of two concurrent
  // writes. The function decides the pattern (every Nth write to one object, a probability).
  std::function<bool(std::string_view method, std::string_view target)> inject_conflict;
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();  // stops
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the I/O thread; port() is valid afterwards. Throws on bind failure.
  void start();
  // Closes the listener and every connection, joins the I/O thread. Idempotent.
  void stop();

  std::uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:<port>" (https with TLS)
  // A kubeconfig (cluster, user with the bearer token, context "edgehub-dev") for kubectl.
  void write_kubeconfig(const std::string& path) const;

  // Test hook: every watch from an older resourceVersion now gets 410 Expired.
  void expire_history();
  // Test hook: ends every open watch stream and closes its connection.
  void drop_watchers();

  // Direct, thread-safe access to the objects (create/get/list/update/patch/remove).
  Store& store();
  const Store& store() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgehub::devapi

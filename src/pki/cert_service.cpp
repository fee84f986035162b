#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <edgehub/pki/cert_service.hpp>
#include <edgehub/pki/token.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace edgehub::pki {

namespace asio = boost::asio;

struct CertService::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, std::shared_ptr<const CertificateAuthority> authority,
       CertServiceOptions o, NodeLookup lookup)
      : ca(std::move(authority)), options(std::move(o)), node_lookup(std::move(lookup)),
        pool(options.signing_threads), executor(std::move(ex)) {}

  void edge_crt(const net::HttpRequest& r, net::Respond respond);
  void node(const net::HttpRequest& r, net::Respond respond);

  std::shared_ptr<const CertificateAuthority> ca;
  CertServiceOptions options;
  NodeLookup node_lookup;
  asio::thread_pool pool;
  asio::any_io_executor executor;
  std::atomic<std::size_t> pending{0};
  std::unique_ptr<net::HttpServer> server;
};

namespace {

net::HttpResponse refuse(unsigned status, const std::string& node, const std::string& peer,
                         const std::string& reason) {
  spdlog::info("certificate service: refused node {} from {}: {}", node.empty() ? "(none)" : node,
               peer, reason);
  return net::HttpResponse::text(status, reason + "\n");
}

}  // namespace

void CertService::Impl::edge_crt(const net::HttpRequest& r, net::Respond respond) {
  const auto node = r.header("NodeName");
  if (node.empty()) return respond(refuse(400, node, r.peer, "the NodeName header is missing"));
  const auto authorization = r.header("Authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (!authorization.starts_with(kBearer)) {
      return respond(refuse(401, node, r.peer, "Authorization is not a bearer token"));
    }
    auto checked = verify_jwt(*ca, std::string_view(authorization).substr(kBearer.size()));
    if (!checked) return respond(refuse(401, node, r.peer, std::string(to_string(checked.error()))));
  } else {
    // Rotation: the node's current certificate, from this CA, for this very node.
    if (!r.peer_verified) {
      return respond(refuse(401, node, r.peer,
                            "no token and no valid client certificate from this CA"));
    }
    if (r.peer_common_name != "system:node:" + node) {
      return respond(refuse(401, node, r.peer,
                            "client certificate CN \"" + r.peer_common_name +
                                "\" does not match NodeName"));
    }
  }
  NodeCsrOptions csr_options{.validity = options.edge_cert_validity};
  if (const auto usages = r.header("ExtKeyUsages"); !usages.empty()) {
    const auto parsed = wire::parse_json_bounded(usages, 2);
    if (!parsed.is_array()) return respond(refuse(400, node, r.peer, "ExtKeyUsages is not a JSON array"));
    for (const auto& u : parsed) {
      if (!u.is_number_integer()) return respond(refuse(400, node, r.peer, "ExtKeyUsages holds a non-integer"));
      csr_options.ext_key_usages.push_back(u.get<int>());
    }
  }
  if (pending.fetch_add(1) >= options.max_pending_signings) {
    pending.fetch_sub(1);
    return respond(refuse(503, node, r.peer, "too many signings in progress; retry shortly"));
  }
  asio::post(pool, [self = shared_from_this(), csr = r.message.body(), node, peer = r.peer,
                    csr_options, respond = std::move(respond)] {
    auto signed_cert = sign_node_csr(*self->ca, csr, node, csr_options);
    self->pending.fetch_sub(1);
    if (!signed_cert) {
      return respond(refuse(static_cast<unsigned>(signed_cert.error().http_status), node, peer,
                            signed_cert.error().reason));
    }
    spdlog::info("certificate service: signed a certificate for node {} ({})", node, peer);
    net::HttpResponse ok{200, std::move(*signed_cert), "application/octet-stream", {}};
    respond(std::move(ok));
  });
}

void CertService::Impl::node(const net::HttpRequest& r, net::Respond respond) {
  const auto name = r.path.substr(std::string_view("/node/").size());
  if (name.empty() || name.find('/') != std::string::npos) {
    return respond(net::HttpResponse::text(400, "a node name is needed\n"));
  }
  if (!node_lookup) return respond(net::HttpResponse::text(500, "node lookup unavailable\n"));
  node_lookup(name, [respond = std::move(respond)](bool exists, std::string error) {
    if (!error.empty()) return respond(net::HttpResponse::text(500, error + "\n"));
    respond(exists ? net::HttpResponse::text(200, "Node found") : net::HttpResponse::text(404, "Node not found"));
  });
}

CertService::CertService(asio::any_io_executor executor, std::shared_ptr<const CertificateAuthority> ca,
                         CertServiceOptions options, NodeLookup node_lookup)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(ca), std::move(options),
                                   std::move(node_lookup))) {}

CertService::~CertService() {
  stop();
  impl_->pool.join();
}

void CertService::start() {
  auto& o = impl_->options;
  auto tls = std::make_shared<net::TlsContext>(net::TlsContext::server(
      {.cert_chain_pem = o.server_cert_pem,
       .private_key_pem = o.server_key_pem,
       .client_ca_pem = impl_->ca->cert_pem(),
       .require_client_cert = false}));
  // Ask for a client certificate (rotation presents one) without requiring it (joining
  // edges have none yet); whether it verified is read per request.
  SSL_CTX_set_verify(tls->native_handle(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  SSL_CTX_set_purpose(tls->native_handle(), X509_PURPOSE_SSL_CLIENT);
  impl_->server = std::make_unique<net::HttpServer>(
      impl_->executor, net::HttpServerOptions{.host = o.host,
                                              .port = o.port,
                                              .tls = tls,
                                              .max_body_bytes = o.max_csr_bytes,
                                              .max_connections_per_address =
                                                  o.max_connections_per_address,
                                              .name = "certificate service",
                                              .on_refuse = o.on_refuse});
  const auto der = impl_->ca->cert_der();
  impl_->server->handle("/ca.crt", [der](const net::HttpRequest&) {
    return net::HttpResponse{200, der, "application/octet-stream", {}};
  });
  std::weak_ptr<Impl> weak = impl_;
  impl_->server->handle("/edge.crt", [weak](const net::HttpRequest& r, net::Respond respond) {
    if (auto self = weak.lock()) self->edge_crt(r, std::move(respond));
  });
  impl_->server->handle("/node/", [weak](const net::HttpRequest& r, net::Respond respond) {
    if (auto self = weak.lock()) self->node(r, std::move(respond));
  });
  impl_->server->start();
}

void CertService::stop() {
  if (impl_->server) impl_->server->stop();
}

std::uint16_t CertService::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace edgehub::pki

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <edgehub/pki/cert_service.hpp>
#include <edgehub/pki/node_identity.hpp>
#include <edgehub/pki/token.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <nlohmann/json.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <optional>

namespace edgehub::pki {

namespace asio = boost::asio;

struct CertService::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::any_io_executor ex, std::shared_ptr<const CertificateAuthority> authority,
       CertServiceOptions o, NodeLookup lookup)
      : ca(std::move(authority)), options(std::move(o)), node_lookup(std::move(lookup)),
        pool(options.signing_threads), executor(std::move(ex)) {}

  struct Refusal {
    unsigned status;
    std::string_view label;  // fixed set: the counter's label
    std::string reason;
  };

  void edge_crt(const net::HttpRequest& r, net::Respond respond);
  std::optional<Refusal> authenticate(const net::HttpRequest& r, const std::string& node);
  void sign(const std::string& node, std::string csr, const std::string& peer,
            const NodeCsrOptions& csr_options, net::Respond respond);
  void node(const net::HttpRequest& r, net::Respond respond);
  void refused(std::string_view label);

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

// Runs a handler so that nothing it throws leaves it (it runs on the API thread): a bug is
// logged, counted and answered 500 — unless it had answered already.
void guarded(CertService::Impl& impl, const net::HttpRequest& r, net::Respond respond,
             void (CertService::Impl::*handler)(const net::HttpRequest&, net::Respond)) {
  auto answered = std::make_shared<std::atomic<bool>>(false);
  net::Respond once = [answered, respond](net::HttpResponse response) {
    if (!answered->exchange(true)) respond(std::move(response));
  };
  try {
    (impl.*handler)(r, once);
  } catch (const std::exception& e) {
    impl.refused("internal_error");
    spdlog::error("certificate service: request {} from {} failed: {}", r.path.substr(0, 128),
                  r.peer, e.what());
    once(net::HttpResponse::text(500, "internal error\n"));
  }
}

}  // namespace

void CertService::Impl::refused(std::string_view label) {
  if (options.on_request_refused) options.on_request_refused(label);
}

// Authenticates the request (join token, or the node's current certificate for renewal);
// the refusal otherwise.
std::optional<CertService::Impl::Refusal> CertService::Impl::authenticate(
    const net::HttpRequest& r, const std::string& node) {
  const auto authorization = r.header("Authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (!authorization.starts_with(kBearer)) {
      return Refusal{401, "unauthenticated", "Authorization is not a bearer token"};
    }
    auto checked = verify_jwt(*ca, std::string_view(authorization).substr(kBearer.size()));
    if (!checked) return Refusal{401, "unauthenticated", std::string(to_string(checked.error()))};
    return std::nullopt;
  }
  // Rotation: the node's current certificate, from this CA, for this very node.
  if (!r.peer_verified) {
    return Refusal{401, "unauthenticated", "no token and no valid client certificate from this CA"};
  }
  if (r.peer_common_name != std::string(kNodeCommonNamePrefix) + node) {
    return Refusal{401, "unauthenticated",
                   "client certificate CN \"" + r.peer_common_name.substr(0, 80) +
                       "\" does not match NodeName"};
  }
  return std::nullopt;
}

void CertService::Impl::edge_crt(const net::HttpRequest& r, net::Respond respond) {
  const auto node = r.header("NodeName");
  const auto shown = node.substr(0, kMaxNodeNameLength + 8);  // edge-chosen: logged truncated
  auto refuse_with = [&](const Refusal& why) {
    refused(why.label);
    respond(refuse(why.status, shown, r.peer, why.reason));
  };
  if (node.empty()) return refuse_with({400, "bad_request", "the NodeName header is missing"});
  if (const auto problem = node_name_problem(node); !problem.empty()) {
    return refuse_with({400, "bad_request", problem});
  }
  if (auto why = authenticate(r, node)) return refuse_with(*why);
  NodeCsrOptions csr_options{.validity = options.edge_cert_validity};
  if (const auto usages = r.header("ExtKeyUsages"); !usages.empty()) {
    const auto parsed = wire::parse_json_bounded(usages, 2);
    if (!parsed.is_array() || parsed.size() > 16) {
      return refuse_with({400, "bad_request", "ExtKeyUsages is not a short JSON array"});
    }
    for (const auto& u : parsed) {
      if (!u.is_number_integer() || u.get<std::int64_t>() < 0 || u.get<std::int64_t>() > 1024) {
        return refuse_with({400, "bad_request", "ExtKeyUsages holds a non-integer"});
      }
      csr_options.ext_key_usages.push_back(static_cast<int>(u.get<std::int64_t>()));
    }
  }
  if (!options.identity_check) return sign(node, r.message.body(), r.peer, csr_options, std::move(respond));
  // Revoked names and serials, and names of Nodes that are not edge nodes, get nothing.
  options.identity_check(
      node, r.peer_serial,
      [self = shared_from_this(), node, csr = r.message.body(), peer = r.peer, csr_options,
       respond = std::move(respond)](IdentityVerdict verdict) mutable {
        if (verdict) {
          self->refused(verdict->label);
          return respond(refuse(verdict->status, node, peer, verdict->reason));
        }
        self->sign(node, std::move(csr), peer, csr_options, std::move(respond));
      });
}

void CertService::Impl::sign(const std::string& node, std::string csr, const std::string& peer,
                             const NodeCsrOptions& csr_options, net::Respond respond) {
  if (pending.fetch_add(1) >= options.max_pending_signings) {
    pending.fetch_sub(1);
    refused("busy");
    return respond(refuse(503, node, peer, "too many signings in progress; retry shortly"));
  }
  asio::post(pool, [self = shared_from_this(), csr = std::move(csr), node, peer, csr_options,
                    respond = std::move(respond)] {
    auto signed_cert = sign_node_csr(*self->ca, csr, node, csr_options);
    self->pending.fetch_sub(1);
    if (!signed_cert) {
      self->refused(signed_cert.error().http_status >= 500 ? "sign_failed" : "bad_request");
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
  if (!valid_node_name(name)) return respond(net::HttpResponse::text(400, "a valid node name is needed\n"));
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
                                              .on_refuse = o.on_connection_refused});
  const auto der = impl_->ca->cert_der();
  impl_->server->handle("/ca.crt", [der](const net::HttpRequest&) {
    return net::HttpResponse{200, der, "application/octet-stream", {}};
  });
  std::weak_ptr<Impl> weak = impl_;
  impl_->server->handle("/edge.crt", [weak](const net::HttpRequest& r, net::Respond respond) {
    if (auto self = weak.lock()) guarded(*self, r, std::move(respond), &Impl::edge_crt);
  });
  impl_->server->handle("/node/", [weak](const net::HttpRequest& r, net::Respond respond) {
    if (auto self = weak.lock()) guarded(*self, r, std::move(respond), &Impl::node);
  });
  impl_->server->start();
}

void CertService::stop() {
  if (impl_->server) impl_->server->stop();
}

std::uint16_t CertService::port() const { return impl_->server ? impl_->server->port() : 0; }

}  // namespace edgehub::pki

#include <sys/resource.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <edgehub/net/run_guarded.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <edgehub/sim/fleet.hpp>
#include <atomic>
#include <future>
#include <spdlog/spdlog.h>

#include "join.hpp"
#include "node.hpp"
#include "worker.hpp"

namespace edgehub::sim {

namespace asio = boost::asio;

struct Fleet::Impl {
  std::optional<net::TlsContext> tls;
  // Token mode: the certificate service and the thread its blocking calls run on.
  std::optional<CertServiceLink> cert_service;
  std::string jwt;
  boost::asio::thread_pool cert_pool{1};
  net::CertAndKey client_ca;
  std::vector<std::unique_ptr<Worker>> workers;
  bool started = false;
  bool stopped = false;

  // Runs fn on every worker's thread and waits for all.
  template <class Fn>
  void on_each_worker(Fn fn) {
    std::vector<std::future<void>> done;
    for (auto& w : workers) {
      auto task = std::make_shared<std::packaged_task<void()>>([&fn, wp = w.get()] { fn(*wp); });
      done.push_back(task->get_future());
      asio::post(w->ioc, [task] { (*task)(); });
    }
    for (auto& f : done) f.get();
  }
};

Fleet::Fleet(SimOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

Fleet::~Fleet() { stop(); }

std::string Fleet::node_name(int i) const {
  return options_.prefix + std::to_string(options_.first_index + i);
}

void Fleet::start() {
  if (impl_->started) return;
  impl_->started = true;
  if (!options_.insecure && options_.cert_service_port != 0) {
    CertServiceAddress address{.host = options_.cert_service_host,
                               .port = options_.cert_service_port,
                               .verify_hostname = options_.verify_hostname};
    std::string ca_pem = options_.server_ca_pem;
    if (!options_.token.empty()) {
      auto [hash, jwt] = split_join_token(options_.token);
      impl_->jwt = std::move(jwt);
      ca_pem = fetch_pinned_ca(address, hash);
      // The downloaded CA verifies the hub, as edgecore writes it to tlsCaFile.
      if (options_.server_ca_pem.empty()) options_.server_ca_pem = ca_pem;
    }
    impl_->cert_service.emplace(CertServiceLink{std::move(address),
                                                net::TlsContext::client({ca_pem, {}, {}}),
                                                &impl_->cert_pool});
  }
  const auto& o = options_;
  if (!o.insecure) {
    impl_->tls = net::TlsContext::client({o.server_ca_pem, {}, {}});
    if (!o.token.empty() && o.cert_service_port == 0) {
      throw std::invalid_argument("a token needs the certificate service's address (--cert-service)");
    }
    if (o.certs_dir.empty() && o.token.empty()) {
      if (o.client_ca_cert_pem.empty() || o.client_ca_key_pem.empty()) {
        throw std::invalid_argument(
            "TLS needs client certificates: give --client-ca and --client-ca-key (minted per "
            "node) or --certs-dir (<node>.crt/.key), or use --insecure");
      }
      impl_->client_ca.cert = net::cert_from_pem(o.client_ca_cert_pem);
      impl_->client_ca.key = net::key_from_pem(o.client_ca_key_pem);
    }
  }
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(o.host, ec);
  asio::ip::tcp::endpoint hub;
  if (ec) {
    asio::io_context resolver_ctx;
    asio::ip::tcp::resolver resolver(resolver_ctx);
    const auto results = resolver.resolve(o.host, std::to_string(o.port));  // throws with reason
    hub = *results.begin();
  } else {
    hub = {address, o.port};
  }

  const int threads = std::max(1, o.io_threads);
  for (int t = 0; t < threads; ++t) {
    impl_->workers.push_back(
        std::make_unique<Worker>(options_, impl_->tls ? &*impl_->tls : nullptr, hub));
    if (impl_->cert_service) impl_->workers.back()->cert_service = &*impl_->cert_service;
  }
  for (int i = 0; i < o.nodes; ++i) {
    auto& w = *impl_->workers[static_cast<std::size_t>(i % threads)];
    w.nodes.push_back(std::make_unique<Node>(w, node_name(i), i));
  }
  // Credentials are made on the workers' threads, in parallel; a failure stops start().
  std::vector<std::future<void>> ready;
  for (auto& wp : impl_->workers) {
    Worker* w = wp.get();
    std::promise<void> promise;
    ready.push_back(promise.get_future());
    w->thread = std::thread([this, w, promise = std::move(promise)]() mutable {
      try {
        if (impl_->tls) {
          const net::Issuer ca{impl_->client_ca.cert.get(), impl_->client_ca.key.get()};
          net::PkeyPtr shared_key;
          if (!options_.unique_keys && options_.certs_dir.empty()) {
            shared_key = net::generate_p256_key();
          }
          for (auto& node : w->nodes) {
            if (!options_.token.empty()) {
              node->credentials() = join(node->name(), shared_key.get());
              w->stats.joins.fetch_add(1, std::memory_order_relaxed);
            } else if (options_.certs_dir.empty()) {
              node->credentials() = net::mint_node_client_cert(node->name(), ca, shared_key.get());
            } else {
              const std::string base = options_.certs_dir + "/" + node->name();
              node->credentials().cert = net::cert_from_pem(net::read_pem_file(base + ".crt"));
              node->credentials().key = net::key_from_pem(net::read_pem_file(base + ".key"));
            }
            node->schedule_rotation();
          }
        }
        promise.set_value();
      } catch (...) {
        promise.set_exception(std::current_exception());
        return;
      }
      const auto n = w->nodes.size();
      for (std::size_t i = 0; i < n; ++i) {
        const auto spread = options_.start_spread * static_cast<std::int64_t>(i) /
                            static_cast<std::int64_t>(std::max<std::size_t>(n, 1));
        w->nodes[i]->begin(spread);
      }
      auto guard = asio::make_work_guard(w->ioc);
      net::run_guarded(w->ioc, "simulator worker");
    });
  }
  std::exception_ptr failure;
  for (auto& f : ready) {
    try {
      f.get();
    } catch (...) {
      failure = std::current_exception();
    }
  }
  if (failure) {
    stop();
    std::rethrow_exception(failure);
  }
}

// Key (shared, or a new one), CSR, GET /edge.crt with the token's JWT. A service that is
// busy (503) is asked again, as edgecore retries; anything else stops start().
net::CertAndKey Fleet::join(const std::string& node, EVP_PKEY* shared_key) {
  net::CertAndKey creds;
  if (shared_key != nullptr) {
    EVP_PKEY_up_ref(shared_key);
    creds.key.reset(shared_key);
  } else {
    creds.key = net::generate_p256_key();
  }
  for (int attempt = 0;; ++attempt) {
    try {
      creds.cert = request_node_cert(impl_->cert_service->address, impl_->cert_service->tls, node,
                                     creds.key.get(), impl_->jwt, nullptr);
      return creds;
    } catch (const JoinError& e) {
      if (e.status() != 503 || attempt >= 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * (1 + attempt % 10)));
    }
  }
}

void Fleet::stop() {
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  // Renewals in flight finish (bounded by the service timeout); queued ones are dropped.
  impl_->cert_pool.stop();
  impl_->cert_pool.join();
  for (auto& w : impl_->workers) {
    asio::post(w->ioc, [wp = w.get()] {
      wp->stopping = true;
      for (auto& node : wp->nodes) node->shutdown();
      wp->scheduler.stop();
      wp->ioc.stop();
    });
  }
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
}

StatsSnapshot Fleet::stats() const {
  StatsSnapshot s;
  s.target = static_cast<std::uint64_t>(options_.nodes);
  std::array<std::uint64_t, Histogram::kBuckets> down{}, up{}, conn{}, twin{};
  for (const auto& w : impl_->workers) {
    s.add(w->stats);
    w->stats.downstream.merge_into(down);
    w->stats.upstream.merge_into(up);
    w->stats.connect_time.merge_into(conn);
    w->stats.twin_rtt.merge_into(twin);
  }
  s.downstream = LatencySummary::from(down);
  s.upstream = LatencySummary::from(up);
  s.connect_time = LatencySummary::from(conn);
  s.twin_rtt = LatencySummary::from(twin);
  return s;
}

nlohmann::json Fleet::state_json() {
  std::vector<nlohmann::json> parts(impl_->workers.size());
  if (!impl_->stopped) {
    std::size_t index = 0;
    std::vector<std::pair<Worker*, std::size_t>> slots;
    for (auto& w : impl_->workers) slots.emplace_back(w.get(), index++);
    impl_->on_each_worker([&](Worker& w) {
      for (auto& [wp, i] : slots) {
        if (wp != &w) continue;
        auto& out = parts[i] = nlohmann::json::array();
        for (auto& node : w.nodes) out.push_back(node->state_json());
      }
    });
  } else {
    // Workers are joined: their data is ours to read.
    for (std::size_t i = 0; i < impl_->workers.size(); ++i) {
      auto& out = parts[i] = nlohmann::json::array();
      for (auto& node : impl_->workers[i]->nodes) out.push_back(node->state_json());
    }
  }
  nlohmann::json nodes = nlohmann::json::array();
  for (auto& p : parts) {
    for (auto& n : p) nodes.push_back(std::move(n));
  }
  return {{"nodes", std::move(nodes)}};
}

bool Fleet::abandon(const std::string& node) {
  if (impl_->stopped) return false;
  std::atomic<bool> done{false};
  impl_->on_each_worker([&](Worker& w) {
    for (auto& n : w.nodes) {
      if (n->name() == node && n->abandon()) done = true;
    }
  });
  return done;
}

std::vector<ObjectRecord> Fleet::objects_of(const std::string& node) {
  std::vector<ObjectRecord> out;
  auto collect = [&](Worker& w) {
    for (auto& n : w.nodes) {
      if (n->name() == node) out = n->objects();
    }
  };
  if (impl_->stopped) {
    for (auto& w : impl_->workers) collect(*w);
  } else {
    std::mutex m;
    impl_->on_each_worker([&](Worker& w) {
      std::lock_guard lock(m);
      collect(w);
    });
  }
  return out;
}

std::string ensure_fd_limit(std::uint64_t needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return "getrlimit(RLIMIT_NOFILE) failed";
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  if (lim.rlim_cur != RLIM_INFINITY && needed > lim.rlim_cur) {
    return "need " + std::to_string(needed) + " file descriptors but the limit is " +
           std::to_string(lim.rlim_cur) + " (hard limit " + std::to_string(lim.rlim_max) +
           "); run fewer nodes per process (--nodes, --first-index) or raise `ulimit -Hn`";
  }
  return {};
}

}  // namespace edgehub::sim

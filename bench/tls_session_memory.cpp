// tls_session_memory: what OpenSSL keeps for one idle edge connection on the hub's side.
//
// Runs --connections mutual-TLS handshakes over socket pairs in this process: the server
// side with the hub's own context (net::TlsContext::server: no tickets, no session cache,
// client certificate required, verified chain dropped), the client side as an edge (a
// P-256 node certificate from a test CA, leaf only, as edgecore sends it). Each connection
// then exchanges one record each way and the server waits for the next one, as an idle
// session does. OpenSSL's allocations are counted through CRYPTO_set_mem_functions; the
// report gives, per idle server connection, the live allocations, the bytes OpenSSL asked
// for, what they take in malloc's chunks (usable size + the 8-byte chunk header), and the
// largest sources by OpenSSL source file and line.
//
// With --release, each server connection then goes the hub's way under TLS 1.3
// (TlsStream::release_handshake_state): its traffic secrets go to a Tls13Records, the SSL is
// freed, and the record each way is exchanged through the Tls13Records.
//
//   tls_session_memory [--connections 200] [--top 25] [--tls12] [--release]

#include <fcntl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <edgehub/net/tls13_records.hpp>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/net/x509_mint.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

using namespace edgehub::net;

// Which side's allocations are being made (one thread runs both sides in turn).
enum class Side { other, server };

struct Allocation {
  std::size_t size;
  Side side;
  const char* file;
  int line;
};

struct Ledger {
  std::mutex mutex;
  std::unordered_map<void*, Allocation> live;
  Side side = Side::other;
  bool on = false;

  void add(void* p, std::size_t n, const char* file, int line) {
    if (p == nullptr) return;
    std::lock_guard lock(mutex);
    if (on) live[p] = {n, side, file, line};
  }
  // The allocation's record, removed (null side: not recorded).
  std::optional<Allocation> take(void* p) {
    if (p == nullptr) return std::nullopt;
    std::lock_guard lock(mutex);
    const auto it = live.find(p);
    if (it == live.end()) return std::nullopt;
    auto a = it->second;
    live.erase(it);
    return a;
  }
};

Ledger& ledger() {
  static Ledger* l = new Ledger;  // never destroyed: OpenSSL frees at exit, after main
  return *l;
}

void* counted_malloc(std::size_t n, const char* file, int line) {
  void* p = std::malloc(n);
  ledger().add(p, n, file, line);
  return p;
}

void* counted_realloc(void* p, std::size_t n, const char* file, int line) {
  if (n == 0) {  // as realloc(p, 0) in glibc: a free
    ledger().take(p);
    std::free(p);
    return nullptr;
  }
  const auto old = ledger().take(p);
  void* q = std::realloc(p, n);
  if (q == nullptr) {
    if (old) ledger().add(p, old->size, old->file, old->line);
    return nullptr;
  }
  if (old) {
    std::lock_guard lock(ledger().mutex);
    ledger().live[q] = {n, old->side, file, line};
  } else {
    ledger().add(q, n, file, line);
  }
  return q;
}

void counted_free(void* p, const char*, int) {
  ledger().take(p);
  std::free(p);
}

struct Options {
  int connections = 200;
  int top = 25;
  bool tls12 = false;
  bool release = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--connections" && has_value) {
      o.connections = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--top" && has_value) {
      o.top = std::max(0, std::atoi(argv[++i]));
    } else if (arg == "--tls12") {
      o.tls12 = true;
    } else if (arg == "--release") {
      o.release = true;
    } else {
      std::fprintf(stderr, "usage: %s [--connections N] [--top N] [--tls12] [--release]\n",
                   argv[0]);
      std::exit(2);
    }
  }
  return o;
}

struct SslFree {
  void operator()(SSL* s) const noexcept { SSL_free(s); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

SslPtr new_ssl(const TlsContext& ctx, int fd, Side side) {
  ledger().side = side;
  SslPtr ssl(SSL_new(ctx.native_handle()));
  if (!ssl) throw TlsError("SSL_new: " + drain_openssl_errors());
  SSL_set_fd(ssl.get(), fd);
  ctx.is_server() ? SSL_set_accept_state(ssl.get()) : SSL_set_connect_state(ssl.get());
  ledger().side = Side::other;
  return ssl;
}

// Runs `step` on each side, in turn, until both return done.
template <class Step>
bool alternate(SSL* server, SSL* client, Step step) {
  bool server_done = false, client_done = false;
  for (int round = 0; round < 100 && !(server_done && client_done); ++round) {
    ledger().side = Side::server;
    if (!server_done) server_done = step(server);
    ledger().side = Side::other;
    if (!client_done) client_done = step(client);
  }
  return server_done && client_done;
}

// One idle server connection: OpenSSL's, or (released) only the record layer's.
struct Idle {
  SslPtr ssl;
  std::unique_ptr<Tls13Records> records;
  std::string version;
};

// The hub's release_handshake_state, on a bare SSL: the record layer takes over, SSL freed.
std::unique_ptr<Tls13Records> release(SslPtr& server) {
  auto records = Tls13Records::take_over(server.get());
  if (!records) throw TlsError("not a TLS 1.3 server connection with a supported suite");
  server.reset();
  return records;
}

// Handshake, a record each way, the server waiting for more.
Idle idle_connection(const TlsContext& server_ctx, const TlsContext& client_ctx, bool released) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw TlsError("socketpair failed");
  for (int fd : fds) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  Idle idle;
  idle.ssl = new_ssl(server_ctx, fds[0], Side::server);
  SslPtr client = new_ssl(client_ctx, fds[1], Side::other);
  if (!alternate(idle.ssl.get(), client.get(), [](SSL* s) { return SSL_do_handshake(s) == 1; })) {
    throw TlsError("handshake failed: " + drain_openssl_errors());
  }
  idle.version = SSL_get_version(idle.ssl.get());
  ledger().side = Side::server;
  if (released) idle.records = release(idle.ssl);
  ledger().side = Side::other;
  char buf[64];
  SSL_write(client.get(), "keepalive", 9);
  ledger().side = Side::server;
  std::size_t got = 0;
  boost::system::error_code ec;
  if (idle.records) {
    idle.records->read(fds[0], buf, sizeof buf, got, ec);
    std::size_t sent = 0;
    idle.records->write(fds[0], "ack", 3, sent, ec);
  } else {
    got = static_cast<std::size_t>(std::max(0, SSL_read(idle.ssl.get(), buf, sizeof buf)));
    SSL_write(idle.ssl.get(), "ack", 3);
  }
  ledger().side = Side::other;
  const int acked = SSL_read(client.get(), buf, sizeof buf);
  ledger().side = Side::server;
  if (idle.records) {
    std::size_t none = 0;
    idle.records->read(fds[0], buf, sizeof buf, none, ec);  // nothing there: the idle wait
  } else {
    SSL_read(idle.ssl.get(), buf, sizeof buf);
  }
  ledger().side = Side::other;
  if (got != 9 || acked != 3) throw TlsError("no application data went through");
  client.reset();
  ::close(fds[1]);
  return idle;
}

}  // namespace

int main(int argc, char** argv) {
  // Before OpenSSL allocates anything.
  if (CRYPTO_set_mem_functions(counted_malloc, counted_realloc, counted_free) != 1) {
    std::fprintf(stderr, "CRYPTO_set_mem_functions refused (OpenSSL already allocated)\n");
    return 1;
  }
  const Options options = parse(argc, argv);
  try {
    auto ca = mint({.common_name = "edgehub bench CA", .usage = CertUsage::ca});
    auto hub = mint({.common_name = "hub",
                     .usage = CertUsage::server,
                     .dns_names = {"localhost"},
                     .ip_addresses = {"127.0.0.1"}},
                    {ca.cert.get(), ca.key.get()});
    auto node = mint_node_client_cert("edge-0", {ca.cert.get(), ca.key.get()});
    const auto server_ctx = TlsContext::server({.cert_chain_pem = to_pem(hub.cert.get()),
                                                .private_key_pem = to_pem(hub.key.get()),
                                                .client_ca_pem = to_pem(ca.cert.get())});
    const auto client_ctx = TlsContext::client({.ca_pem = to_pem(ca.cert.get()),
                                                .cert_chain_pem = to_pem(node.cert.get()),
                                                .private_key_pem = to_pem(node.key.get())});
    if (options.tls12) SSL_CTX_set_max_proto_version(client_ctx.native_handle(), TLS1_2_VERSION);
    if (options.release) capture_traffic_secrets(server_ctx.native_handle());

    ledger().on = true;
    std::vector<Idle> idle;
    for (int i = 0; i < options.connections; ++i) {
      idle.push_back(idle_connection(server_ctx, client_ctx, options.release));
    }
    std::lock_guard lock(ledger().mutex);
    ledger().on = false;

    struct Source {
      std::size_t count = 0, bytes = 0;
    };
    std::map<std::string, Source> sources;
    std::size_t count = 0, requested = 0, in_chunks = 0;
    for (const auto& [p, a] : ledger().live) {
      if (a.side != Side::server) continue;
      ++count;
      requested += a.size;
      in_chunks += ::malloc_usable_size(p) + sizeof(std::size_t);
      auto& s = sources[std::string(a.file ? a.file : "?") + ":" + std::to_string(a.line)];
      ++s.count;
      s.bytes += a.size;
    }
    const double n = options.connections;
    std::printf("%s, %d idle server connections (%s), per connection:\n",
                OpenSSL_version(OPENSSL_VERSION), options.connections,
                idle.front().version.c_str());
    if (options.release) {
      std::printf("  released to the record layer: Tls13Records %zu bytes, no buffer while idle\n",
                  sizeof(Tls13Records));
    }
    std::printf("  live allocations   %.1f\n", count / n);
    std::printf("  bytes requested    %.0f\n", requested / n);
    std::printf("  bytes in chunks    %.0f (%.1f KiB)\n", in_chunks / n, in_chunks / n / 1024);
    std::vector<std::pair<std::string, Source>> by_size(sources.begin(), sources.end());
    std::sort(by_size.begin(), by_size.end(),
              [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
    if (by_size.size() > static_cast<std::size_t>(options.top)) by_size.resize(options.top);
    std::printf("largest sources (bytes requested per connection, allocations):\n");
    for (const auto& [where, s] : by_size) {
      std::printf("  %7.0f  %5.1f  %s\n", s.bytes / n, s.count / n, where.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tls_session_memory: %s\n", e.what());
    return 1;
  }
  return 0;
}

// Real TLS clients against the hub's server stream on loopback: `openssl s_client` sending
// KeyUpdates (its K and k commands) to both the compact record layer (Tls13Records) and
// OpenSSL's own (hub.compactTlsSessions false), and Go's crypto/tls — edgecore's TLS stack —
// exchanging megabytes both ways with Tls13Records over each cipher suite.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <edgehub/net/tls13_records_seam.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "test_pki.hpp"

namespace edgehub::net {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A program with its stdin and stdout on pipes (stderr joins stdout).
class Program {
 public:
  explicit Program(const std::vector<std::string>& argv,
                   const std::vector<std::string>& env = {}) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = test::spawn(argv, {.stdin_fd = in[0],
                              .stdout_fd = out[1],
                              .stderr_fd = out[1],
                              .env = env,
                              .search_path = true});
    ::close(in[0]);
    ::close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~Program() {
    close_stdin();
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
  }

  void write(const std::string& text) {
    if (stdin_ >= 0) (void)!::write(stdin_, text.data(), text.size());
  }
  void close_stdin() {
    if (stdin_ >= 0) ::close(stdin_);
    stdin_ = -1;
  }
  // Reads output until it contains `text` `times` times, the output ends or `timeout` passes.
  bool wait_for(const std::string& text, std::size_t times = 1,
                std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (count(output, text) < times) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::read(stdout_, buf, sizeof buf);
      if (n <= 0) return count(output, text) >= times;
      output.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  // The exit code, after reading the rest of the output; nullopt if it did not end in time.
  std::optional<int> wait(std::chrono::milliseconds timeout = 120s) {
    wait_for("\x01never\x01", 1, timeout);
    for (int i = 0; i < 100 && !status_; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else {
        std::this_thread::sleep_for(50ms);
      }
    }
    return status_;
  }

  std::string output;

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::optional<int> status_;
};

// An echo server on 127.0.0.1 for one connection, on its own thread; `compact`: hand the
// connection over to Tls13Records after the handshake, as the hub does by default.
class EchoServer {
 public:
  EchoServer(const testing::TestPki& pki, bool compact, const std::string& suite = {})
      : ctx_(pki.server_context()) {
    capture_traffic_secrets(ctx_.native_handle());
    if (!suite.empty()) SSL_CTX_set_ciphersuites(ctx_.native_handle(), suite.c_str());
    asio::co_spawn(ioc_, serve(compact), [this](std::exception_ptr e) { failed = !!e; });
    thread_ = std::thread([this] { ioc_.run_for(180s); });
  }
  ~EchoServer() {
    ioc_.stop();
    thread_.join();
  }
  std::string port() const { return std::to_string(acceptor_.local_endpoint().port()); }
  // Waits for the connection to end; false if it did not in time.
  bool join() {
    thread_.join();
    thread_ = std::thread([] {});
    return done;
  }

  bool released = false, failed = false, done = false;
  std::size_t echoed = 0;
  error_code end;

 private:
  awaitable<void> serve(bool compact) {
    TlsStream s(co_await acceptor_.async_accept(use_awaitable), ctx_);
    co_await s.async_handshake(HandshakeRole::server, use_awaitable);
    if (compact) released = s.release_handshake_state();
    std::vector<char> buf(64 * 1024);
    for (;;) {
      const std::size_t n = co_await s.async_read_some(asio::buffer(buf),
                                                       asio::redirect_error(use_awaitable, end));
      if (end) break;
      co_await asio::async_write(s, asio::buffer(buf.data(), n), use_awaitable);
      echoed += n;
    }
    error_code ignored;
    co_await s.async_shutdown(asio::redirect_error(use_awaitable, ignored));
    done = true;
  }

  asio::io_context ioc_;
  asio::ip::tcp::acceptor acceptor_{ioc_, {asio::ip::make_address("127.0.0.1"), 0}};
  TlsContext ctx_;
  std::thread thread_;
};

// The PKI's certificates and keys as PEM files in a fresh directory.
struct PemFiles {
  explicit PemFiles(const testing::TestPki& pki) {
    std::string tmpl = (fs::temp_directory_path() / "edgehub-tls-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    std::ofstream(dir / "ca.pem") << to_pem(pki.ca.cert.get());
    std::ofstream(dir / "client.pem") << to_pem(pki.client.cert.get());
    std::ofstream(dir / "client.key") << to_pem(pki.client.key.get());
  }
  ~PemFiles() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  std::string path(const char* name) const { return (dir / name).string(); }
  fs::path dir;
};

class SClientKeyUpdateTest : public ::testing::TestWithParam<bool> {};

INSTANTIATE_TEST_SUITE_P(Modes, SClientKeyUpdateTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "compact" : "openssl"; });

// s_client's K asks for the server's KeyUpdate (update_requested), k does not (man
// s_client; -ign_eof would turn the commands off). After each, data still goes both ways;
// the server answers each K with exactly one KeyUpdate of its own, and k with none.
TEST_P(SClientKeyUpdateTest, FollowsKeyUpdatesFromOpensslSClient) {
  const testing::TestPki pki;
  const PemFiles pem(pki);
  EchoServer server(pki, GetParam());
  Program client({"openssl", "s_client", "-connect", "127.0.0.1:" + server.port(), "-tls1_3",
                  "-CAfile", pem.path("ca.pem"), "-cert", pem.path("client.pem"), "-key",
                  pem.path("client.key"), "-msg"});
  client.write("line-before\n");
  ASSERT_TRUE(client.wait_for("line-before")) << client.output;
  const std::vector<std::string> commands = {"K", "k", "K", "k", "k", "K"};
  for (std::size_t i = 0; i < commands.size(); ++i) {
    // s_client drops whatever else came in the same read as a command: wait for it first.
    client.write(commands[i] + "\n");
    ASSERT_TRUE(client.wait_for("KEYUPDATE", i + 1)) << client.output;
    const std::string line = "line-after-" + std::to_string(i) + commands[i];
    client.write(line + "\n");
    ASSERT_TRUE(client.wait_for(line)) << "after " << commands[i] << ":\n" << client.output;
  }
  client.close_stdin();  // s_client ends: close_notify
  EXPECT_EQ(client.wait(), 0) << client.output;
  EXPECT_TRUE(server.join());
  EXPECT_EQ(server.released, GetParam());
  EXPECT_FALSE(server.failed);
  EXPECT_EQ(server.end, asio::error::eof) << server.end.message();
  EXPECT_EQ(count(client.output, ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"), 6u)
      << client.output;
  EXPECT_EQ(count(client.output, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"), 3u)
      << client.output;
}

// Builds go_tls_client with the go tool into the build tree (no network, no modules).
std::string build_go_client() {
  const fs::path out = fs::path(EDGEHUB_BINARY_DIR) / "go_tls_client";
  const fs::path source = fs::path(EDGEHUB_SOURCE_DIR) / "test/unit/net/go_tls_client/main.go";
  Program go({"go", "build", "-o", out.string(), source.string()},
             {"GO111MODULE=off", "GOFLAGS=", "GOPROXY=off",
              "GOCACHE=" + (fs::path(EDGEHUB_BINARY_DIR) / "go-cache").string(),
              "GOPATH=" + (fs::path(EDGEHUB_BINARY_DIR) / "go-path").string()});
  const auto status = go.wait(300s);
  if (status == 127) {
    ADD_FAILURE() << "`go` not found: install golang-go (scripts/install-deps.sh)";
    return {};
  }
  if (status != 0) {
    ADD_FAILURE() << "go build failed:\n" << go.output;
    return {};
  }
  return out.string();
}

class GoClientTest : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(Suites, GoClientTest,
                         ::testing::Values("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                           "TLS_CHACHA20_POLY1305_SHA256"));

// Go does not let a client choose TLS 1.3 suites, so the server offers only one. 6 MiB go
// each way in writes of every size; the server re-keys every 64 records (through the seam)
// and Go follows each of its KeyUpdates.
TEST_P(GoClientTest, ExchangesMegabytesWithGoCryptoTls) {
  const std::string go_client = build_go_client();
  ASSERT_FALSE(go_client.empty());
  const testing::TestPki pki;
  const PemFiles pem(pki);
  const auto previous = Tls13RecordsSeam::set_rekey_after(64);
  EchoServer server(pki, true, GetParam());
  constexpr std::size_t kBytes = 6 << 20;
  Program client({go_client, "-addr", "127.0.0.1:" + server.port(), "-ca", pem.path("ca.pem"),
                  "-cert", pem.path("client.pem"), "-key", pem.path("client.key"), "-bytes",
                  std::to_string(kBytes)});
  const auto status = client.wait();
  Tls13RecordsSeam::set_rekey_after(previous);
  EXPECT_EQ(status, 0) << client.output;
  EXPECT_NE(client.output.find("suite=" + GetParam() + " bytes=" + std::to_string(kBytes) + " ok"),
            std::string::npos)
      << client.output;
  EXPECT_TRUE(server.join());
  EXPECT_TRUE(server.released);
  EXPECT_FALSE(server.failed);
  EXPECT_EQ(server.echoed, kBytes);
}

}  // namespace
}  // namespace edgehub::net

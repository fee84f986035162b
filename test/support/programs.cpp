#include "programs.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace edgehub::test {

namespace fs = std::filesystem;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::chrono_literals;

fs::path fresh_work_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("edgehub-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string wait_for_log(const fs::path& file, const std::string& pattern,
                         std::chrono::milliseconds limit) {
  const std::regex re(pattern);
  for (const auto end = std::chrono::steady_clock::now() + limit;
       std::chrono::steady_clock::now() < end;) {
    std::smatch m;
    const std::string text = slurp(file);
    if (std::regex_search(text, m, re)) return m[1];
    std::this_thread::sleep_for(100ms);
  }
  return {};
}

HttpAnswer http_request(std::uint16_t port, http::verb verb, const std::string& target,
                        const std::string& body, const std::string& content_type) {
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(30s);
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req(verb, target, 11);
    req.set(http::field::host, "127.0.0.1");
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    http::read(stream, buffer, parser);
    return {static_cast<int>(parser.get().result_int()), parser.get().body()};
  } catch (const std::exception&) {
    return {};
  }
}

HttpAnswer http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, http::verb::get, target);
}

double metric(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  }
  return -1;
}

SimProcess::SimProcess(const fs::path& certs, std::uint16_t hub_port, int nodes,
                       const std::vector<std::string>& extra, const fs::path& log)
    : log(log) {
  std::vector<std::string> argv = {binary("edgehub-sim"),
                                   "--server", "127.0.0.1:" + std::to_string(hub_port),
                                   "--nodes", std::to_string(nodes),
                                   "--ca", (certs / "ca.crt").string(),
                                   "--client-ca-key", (certs / "ca.key").string(),
                                   "--state-listen", "127.0.0.1:0",
                                   "--progress-interval", "3600"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  process = std::make_unique<Child>(argv, log.string());
  const auto port = wait_for_log(log, R"(state served on http://127\.0\.0\.1:([0-9]+))");
  state_port = port.empty() ? 0 : static_cast<std::uint16_t>(std::stoi(port));
}

SimProcess::~SimProcess() {
  if (process && process->running()) {
    process->signal(SIGTERM);
    process->wait(30s);
  }
}

}  // namespace edgehub::test

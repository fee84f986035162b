#pragma once
// What the tests that run whole programs (`edgehub`, `edgehub-sim`) as processes share: a
// fresh directory for their files, their log lines waited for, their HTTP endpoints and
// Prometheus samples asked, and a simulator fleet started.

#include <boost/beast/http/verb.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "process.hpp"

namespace edgehub::test {

// An empty directory edgehub-<name>-<pid> in the temporary directory.
std::filesystem::path fresh_work_dir(const std::string& name);

std::string slurp(const std::filesystem::path& path);

// The first group of the first match of `pattern` in `file`, waiting up to `limit` for it to
// appear; "" when it did not.
std::string wait_for_log(const std::filesystem::path& file, const std::string& pattern,
                         std::chrono::milliseconds limit = std::chrono::seconds(60));

struct HttpAnswer {
  int status = 0;  // 0: no answer (connection refused...)
  std::string body;
  nlohmann::json json_body() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One request to 127.0.0.1:`port` (a body of any size: a list of thousands of Nodes).
HttpAnswer http_request(std::uint16_t port, boost::beast::http::verb verb,
                        const std::string& target, const std::string& body = {},
                        const std::string& content_type = "application/json");
HttpAnswer http_get(std::uint16_t port, const std::string& target);

// The value of one sample in Prometheus text ("name{labels} value"), or -1.
double metric(const std::string& text, const std::string& sample);

// An edgehub-sim process: `nodes` edges dialling 127.0.0.1:`hub_port` with client
// certificates from the CA in `certs` (ca.crt, ca.key), its state served on a free loopback
// port (0 when it did not start), its output in `log`. Stopped with SIGTERM.
struct SimProcess {
  SimProcess(const std::filesystem::path& certs, std::uint16_t hub_port, int nodes,
             const std::vector<std::string>& extra, const std::filesystem::path& log);
  ~SimProcess();
  SimProcess(const SimProcess&) = delete;
  SimProcess& operator=(const SimProcess&) = delete;

  nlohmann::json state() const { return http_get(state_port, "/").json_body(); }
  nlohmann::json stats() const { return http_get(state_port, "/stats").json_body(); }

  std::filesystem::path log;
  std::unique_ptr<Child> process;
  std::uint16_t state_port = 0;
};

}  // namespace edgehub::test

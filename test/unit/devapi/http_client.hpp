// A minimal blocking HTTP/1.1 client for the devapi tests: one request per connection, and a
// reader for chunked watch streams. Every read has a bounded timeout so that a broken server
// fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace edgehub::devapi::testing {

struct HttpResult {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

struct HttpCall {
  std::string method = "GET";
  std::string target;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
};

HttpResult http_call(std::uint16_t port, const HttpCall& call);
inline HttpResult http_get(std::uint16_t port, const std::string& target) {
  return http_call(port, {"GET", target, "", "", {}});
}

// Reads a watch response event by event.
class WatchStream {
 public:
  // receive_buffer: shrink the socket's receive buffer (slow-consumer tests).
  WatchStream(std::uint16_t port, const std::string& target,
              std::chrono::milliseconds timeout = std::chrono::seconds(20), int receive_buffer = 0);
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  int status();
  const std::map<std::string, std::string>& headers();
  // The next event; nullopt once the stream ended (last chunk or connection closed).
  // Throws std::runtime_error when nothing arrives within the timeout.
  std::optional<nlohmann::json> next();
  // Collects events until `stop` returns true for one of them (included) or the stream ends.
  template <class Pred>
  std::vector<nlohmann::json> until(Pred stop) {
    std::vector<nlohmann::json> out;
    while (auto event = next()) {
      out.push_back(*event);
      if (stop(out.back())) break;
    }
    return out;
  }
  bool ended() const { return ended_; }

 private:
  bool fill();  // false on EOF
  void read_header();

  struct Impl;
  Impl* impl_;
  std::string raw_;   // undecoded bytes
  std::string body_;  // decoded body bytes not yet returned as lines
  bool header_done_ = false;
  bool ended_ = false;
  bool eof_ = false;
  int status_ = 0;
  std::map<std::string, std::string> headers_;
};

}  // namespace edgehub::devapi::testing

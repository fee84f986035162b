#pragma once
// Value types used in the configuration, and their parsers. A parser returns the value or a
// reason that completes the sentence `<key>: <reason>` (e.g. `"10000" is not host:port`).

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace edgehub::config {

struct HostPort {
  std::string host;  // empty means every address
  std::uint16_t port = 0;

  std::string to_string() const;
  bool operator==(const HostPort&) const = default;
};

using Duration = std::chrono::milliseconds;

// Why a value was refused; completes the sentence `<key>: <text>`.
struct Reason {
  std::string text;
};

template <class T>
using Parsed = boost::system::result<T, Reason>;

// "127.0.0.1:10000", "[::1]:10000", ":10000", "hub.example.com:443".
Parsed<HostPort> parse_host_port(std::string_view text);
// "30s", "250ms", "5m", "1h", "1m30s"; a bare integer is seconds.
Parsed<Duration> parse_duration(std::string_view text);
std::string format_duration(Duration d);
// "8MiB", "512KiB", "1GiB", "4096"; bytes.
Parsed<std::uint64_t> parse_size(std::string_view text);
std::string format_size(std::uint64_t bytes);
Parsed<bool> parse_bool(std::string_view text);
Parsed<std::int64_t> parse_int(std::string_view text, std::int64_t min, std::int64_t max);

// Replaces ${NAME} (and ${NAME:-default}) with the environment's value; `$${` is a literal
// `${`. Fails naming the variable when it is unset and has no default.
Parsed<std::string> expand_env(std::string_view text);

}  // namespace edgehub::config

#include <edgehub/config/values.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>

namespace edgehub::config {

namespace {

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

bool valid_host(std::string_view host) {
  if (host.empty()) return true;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '_';
  });
}

}  // namespace

std::string HostPort::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Parsed<HostPort> parse_host_port(std::string_view text) {
  const auto bad = [&] { return Reason{quoted(text) + " is not host:port"}; };
  HostPort hp;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad();
    }
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad();
    hp.host = std::string(text.substr(0, colon));
    if (hp.host.find(':') != std::string::npos) return bad();  // IPv6 needs brackets
    port_text = text.substr(colon + 1);
  }
  if (!valid_host(hp.host) || !all_digits(port_text) || port_text.size() > 5) return bad();
  const auto port = std::stoul(std::string(port_text));
  if (port > 65535) return Reason{quoted(text) + " has a port above 65535"};
  hp.port = static_cast<std::uint16_t>(port);
  return hp;
}

Parsed<Duration> parse_duration(std::string_view text) {
  const auto bad = [&] {
    return Reason{quoted(text) + " is not a duration (e.g. 30s, 250ms, 5m, 1h30m)"};
  };
  if (text.empty()) return bad();
  if (all_digits(text)) {
    if (text.size() > 9) return bad();
    return Duration(std::stoll(std::string(text)) * 1000);
  }
  std::int64_t total = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    std::size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits == 0 || digits > 9) return bad();
    const std::int64_t n = std::stoll(std::string(rest.substr(0, digits)));
    rest.remove_prefix(digits);
    std::int64_t unit = 0;
    if (rest.starts_with("ms")) {
      unit = 1, rest.remove_prefix(2);
    } else if (rest.starts_with("s")) {
      unit = 1000, rest.remove_prefix(1);
    } else if (rest.starts_with("m")) {
      unit = 60'000, rest.remove_prefix(1);
    } else if (rest.starts_with("h")) {
      unit = 3'600'000, rest.remove_prefix(1);
    } else {
      return bad();
    }
    total += n * unit;
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  const auto ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Parsed<std::uint64_t> parse_size(std::string_view text) {
  const auto bad = [&] { return Reason{quoted(text) + " is not a size (e.g. 4096, 512KiB, 8MiB, 1GiB)"}; };
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) return bad();
  const std::uint64_t n = std::stoull(std::string(text.substr(0, digits)));
  const auto unit = text.substr(digits);
  if (unit.empty() || unit == "B") return n;
  if (unit == "KiB") return n << 10;
  if (unit == "MiB") return n << 20;
  if (unit == "GiB") return n << 30;
  return bad();
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1ull << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (1ull << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

Parsed<bool> parse_bool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return Reason{quoted(text) + " is not true or false"};
}

Parsed<std::int64_t> parse_int(std::string_view text, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Reason{quoted(text) + " is not an integer"};
  }
  if (value < min || value > max) {
    return Reason{quoted(text) + " is out of range [" + std::to_string(min) + ", " +
                  std::to_string(max) + "]"};
  }
  return value;
}

Parsed<std::string> expand_env(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      out += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      out.push_back(text[i++]);
      continue;
    }
    const auto close = text.find('}', i + 2);
    if (close == std::string_view::npos) return Reason{"unterminated ${ in " + quoted(text)};
    const auto inner = text.substr(i + 2, close - i - 2);
    const auto dash = inner.find(":-");
    const std::string name(inner.substr(0, dash));
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
        })) {
      return Reason{"bad variable name in " + quoted(text)};
    }
    const char* value = std::getenv(name.c_str());
    if (value != nullptr && *value != '\0') {
      out += value;
    } else if (dash != std::string_view::npos) {
      out += inner.substr(dash + 2);
    } else {
      return Reason{"environment variable " + name + " is not set"};
    }
    i = close + 1;
  }
  return Parsed<std::string>(boost::system::in_place_value, std::move(out));
}

}  // namespace edgehub::config

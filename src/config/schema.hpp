#pragma once
// The table of every configuration key: path, type, meaning, and how to set and show it.

#include <edgehub/config/config.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::config::detail {

struct Key {
  std::string path;         // dotted YAML path, e.g. "hub.listen"
  std::string type;         // shown in the reference: host:port, duration, ...
  std::string description;
  bool is_list = false;
  bool is_string = false;   // plain string: ${ENV} in its default is expanded at load
  // Parses and stores one value; returns the reason on failure.
  std::function<std::optional<std::string>(Config&, const std::string&)> set;
  std::function<std::optional<std::string>(Config&, const std::vector<std::string>&)> set_list;
  std::function<std::string(Config&)> show;
};

const std::vector<Key>& schema();
const Key* find_key(const std::string& path);
bool is_section(const std::string& path);  // a prefix of some key, e.g. "hub.tls"

}  // namespace edgehub::config::detail

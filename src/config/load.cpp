#include <boost/asio/ip/address.hpp>
#include <edgehub/config/config.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "schema.hpp"

namespace edgehub::config {

std::string ConfigError::to_string() const {
  std::string out;
  if (!file.empty()) out += file + ": ";
  if (!key.empty()) out += key + ": ";
  return out + reason;
}

namespace {

using detail::Key;

class Loader {
 public:
  Loader(std::string origin) : origin_(std::move(origin)) {}

  void walk(const YAML::Node& node, const std::string& path);
  void apply_overrides(const Overrides& o);
  void expand_defaults();
  void validate();

  Config config;
  Errors errors;

 private:
  void error(const std::string& key, std::string reason) {
    errors.push_back({origin_, key, std::move(reason)});
  }
  void set(const Key& key, const std::string& path, const std::string& raw) {
    auto expanded = expand_env(raw);
    if (!expanded) return error(path, expanded.error().text);
    if (auto failed = key.set(config, *expanded)) return error(path, *failed);
    touched_.insert(key.path);
  }

  std::string origin_;
  std::set<std::string> touched_;  // keys given a value by the file or a flag
};

void Loader::walk(const YAML::Node& node, const std::string& path) {
  for (const auto& item : node) {
    const auto name = item.first.as<std::string>();
    const auto full = path.empty() ? name : path + "." + name;
    const YAML::Node& value = item.second;
    const Key* key = detail::find_key(full);
    if (key == nullptr) {
      if (detail::is_section(full)) {
        if (value.IsMap()) {
          walk(value, full);
        } else if (!value.IsNull()) {
          error(full, "is a section and needs keys below it");
        }
        continue;
      }
      error(full, "unknown key (line " + std::to_string(item.first.Mark().line + 1) + ")");
      continue;
    }
    if (key->is_list) {
      if (value.IsNull()) {
        key->set_list(config, {});
        continue;
      }
      if (!value.IsSequence()) {
        error(full, "needs a list");
        continue;
      }
      std::vector<std::string> items;
      bool ok = true;
      for (const auto& element : value) {
        if (!element.IsScalar()) {
          error(full, "list items must be single values");
          ok = false;
          break;
        }
        auto expanded = expand_env(element.Scalar());
        if (!expanded) {
          error(full, expanded.error().text);
          ok = false;
          break;
        }
        items.push_back(*expanded);
      }
      if (ok) key->set_list(config, items);
      touched_.insert(key->path);
      continue;
    }
    if (!value.IsScalar()) {
      error(full, value.IsNull() ? "has no value" : "needs a single value, not a list or map");
      continue;
    }
    set(*key, full, value.Scalar());
  }
}

void Loader::apply_overrides(const Overrides& o) {
  const std::string saved = origin_;
  origin_ = "command line";
  const auto flag = [&](const std::optional<std::string>& value, const char* path,
                        const char* name) {
    if (value) set(*detail::find_key(path), name, *value);
  };
  flag(o.kubeconfig, "kube.kubeconfig", "--kubeconfig");
  flag(o.listen, "hub.listen", "--listen");
  flag(o.metrics_listen, "metrics.listen", "--metrics-listen");
  flag(o.cert_service_listen, "hub.certService.listen", "--cert-service-listen");
  flag(o.dev_api_listen, "dev.apiListen", "--dev-api-listen");
  flag(o.hub_id, "hub.id", "--hub-id");
  flag(o.log_level, "log.level", "--log-level");
  flag(o.log_format, "log.format", "--log-format");
  if (o.dev) config.dev_mode = true;
  origin_ = saved;
}

// Defaults may name environment variables (hub.id defaults to ${POD_NAME:-edgehub-0}).
void Loader::expand_defaults() {
  for (const auto& key : detail::schema()) {
    if (!key.is_string || touched_.contains(key.path)) continue;
    auto expanded = expand_env(key.show(config));
    if (!expanded) {
      error(key.path, "default: " + expanded.error().text);
      continue;
    }
    key.set(config, *expanded);
  }
}

bool dns_label(const std::string& s) {
  return !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '-' || c == '.';
  });
}

bool ip_or_cidr(const std::string& text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) return false;
  if (slash == std::string::npos) return true;
  const auto bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 ||
      !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return std::stoi(bits) <= (address.is_v4() ? 32 : 128);
}

void Loader::validate() {
  if (!dns_label(config.hub.id)) {
    error("hub.id", "\"" + config.hub.id +
                        "\" must be a DNS subdomain name (lower-case letters, digits, '-', '.')");
  }
  if (!dns_label(config.hub.namespace_)) {
    error("hub.namespace", "\"" + config.hub.namespace_ + "\" is not a valid namespace name");
  }
  if (config.hub.lease_write_interval > std::chrono::seconds(30)) {
    error("hub.leaseWriteInterval",
          "must be at most 30s: with the edges' 10 s renewals, a Lease would go unwritten for "
          "longer than kube-controller-manager's 40 s grace period and its node turn NotReady");
  }
  if (config.hub.single_thread && config.hub.io_threads > 1) {
    error("hub.ioThreads", "must be 0 or 1 with hub.singleThread (one thread runs everything)");
  }
  const auto& proxy = config.hub.proxy;
  const bool ca_from_secret = !config.hub.cert_service.ca_secret.empty();
  if (!proxy.enabled) {
    for (const auto& [path, value] :
         {std::pair{"hub.tls.certFile", config.hub.tls.cert_file},
          std::pair{"hub.tls.keyFile", config.hub.tls.key_file},
          std::pair{"hub.tls.clientCAFile", config.hub.tls.client_ca_file}}) {
      if (value.empty() && !config.dev_mode) error(path, "is required unless hub.proxy.enabled");
    }
  } else if (proxy.client_ca_file.empty() && proxy.trusted_addresses.empty()) {
    error("hub.proxy.trustedAddresses",
          "must name the ingress addresses when hub.proxy.enabled (else anyone could claim any "
          "node); better, authenticate the ingress with hub.proxy.clientCAFile");
  }
  if (proxy.enabled && !proxy.client_ca_file.empty()) {
    if (proxy.client_names.empty()) {
      error("hub.proxy.clientNames",
            "must name the CN of the ingress's client certificate when hub.proxy.clientCAFile is set");
    }
    for (const auto& [path, value] : {std::pair{"hub.tls.certFile", config.hub.tls.cert_file},
                                      std::pair{"hub.tls.keyFile", config.hub.tls.key_file}}) {
      if (value.empty() && !ca_from_secret) {
        error(path, "is required with hub.proxy.clientCAFile (the edge port speaks TLS to the ingress)");
      }
    }
  }
  for (const auto& name : proxy.client_names) {
    if (name.empty() || name.starts_with("system:node:")) {
      error("hub.proxy.clientNames", "\"" + name + "\" is not an ingress's name (an edge's CN is "
                                     "system:node:<name>)");
    }
  }
  for (const auto& [path, list] :
       {std::pair{"hub.proxy.trustedAddresses", &config.hub.proxy.trusted_addresses},
        std::pair{"metrics.debugFrom", &config.metrics.debug_from}}) {
    for (const auto& text : *list) {
      if (!ip_or_cidr(text)) error(path, "\"" + text + "\" is not an IP address or CIDR block");
    }
  }
  if (config.hub.proxy.enabled && config.hub.proxy.identity_header.empty()) {
    error("hub.proxy.identityHeader", "is required when hub.proxy.enabled");
  }
  const auto& cs = config.hub.cert_service;
  for (const auto& [path, value] : {std::pair{"hub.certService.caSecret", cs.ca_secret},
                                    std::pair{"hub.certService.tokenSecret", cs.token_secret}}) {
    const auto slash = value.find('/');
    if (!value.empty() && (slash == std::string::npos || !dns_label(value.substr(0, slash)) ||
                           !dns_label(value.substr(slash + 1)))) {
      error(path, "\"" + value + "\" must be namespace/name");
    }
  }
  if (!cs.token_secret.empty() && cs.token_ttl <= cs.token_refresh_interval) {
    error("hub.certService.tokenTTL",
          "must be longer than hub.certService.tokenRefreshInterval (else the Secret can hold an "
          "expired token)");
  }
  if (config.hub.listen == config.metrics.listen && config.hub.listen.port != 0) {
    error("metrics.listen", "is the same address as hub.listen");
  }
}

boost::system::result<Config, Errors> finish(Loader& loader, const Overrides& overrides) {
  loader.apply_overrides(overrides);
  loader.expand_defaults();
  if (loader.errors.empty()) loader.validate();
  if (!loader.errors.empty()) return loader.errors;
  return loader.config;
}

}  // namespace

boost::system::result<Config, Errors> load_text(const std::string& yaml, const std::string& origin,
                                                const Overrides& overrides) {
  Loader loader(origin);
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return Errors{{origin, "", "line " + std::to_string(e.mark.line + 1) + ": " + e.msg}};
  }
  if (root.IsMap()) {
    loader.walk(root, "");
  } else if (!root.IsNull()) {
    return Errors{{origin, "", "the top level must be a map of sections (hub:, kube:, ...)"}};
  }
  return finish(loader, overrides);
}

boost::system::result<Config, Errors> load(const std::string& path, const Overrides& overrides) {
  if (path.empty()) {
    Loader loader("defaults");
    return finish(loader, overrides);
  }
  std::ifstream in(path);
  if (!in) return Errors{{path, "", "cannot be read (missing file or no permission)"}};
  std::stringstream text;
  text << in.rdbuf();
  return load_text(text.str(), path, overrides);
}

std::vector<std::string> keys() {
  std::vector<std::string> out;
  for (const auto& key : detail::schema()) out.push_back(key.path);
  return out;
}

std::string reference_markdown() {
  Config defaults;
  std::ostringstream out;
  out << "# Configuration reference\n\n"
      << "Generated from the code by `edgehub config-reference`; a test keeps this file in step.\n"
      << "Values may use `${VAR}` or `${VAR:-default}` for environment variables. Durations are\n"
      << "written `250ms`, `30s`, `5m`, `1h`; sizes `4096`, `512KiB`, `8MiB`.\n\n"
      << "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& key : detail::schema()) {
    out << "| `" << key.path << "` | " << key.type << " | `" << key.show(defaults) << "` | "
        << key.description << " |\n";
  }
  return out.str();
}

}  // namespace edgehub::config

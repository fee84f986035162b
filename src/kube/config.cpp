#include <edgehub/kube/config.hpp>

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace edgehub::kube {

namespace {

enum class ReadStatus { Ok, NotFound, Failed };

ReadStatus read_file(const std::string& path, std::string& out) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return ReadStatus::NotFound;
  std::ifstream in(path, std::ios::binary);
  if (!in) return ReadStatus::Failed;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return ReadStatus::Failed;
  out = ss.str();
  return ReadStatus::Ok;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::optional<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  bool padding = false;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      padding = true;
      continue;
    }
    int v = val(c);
    if (v < 0 || padding) return std::nullopt;
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  if (bits >= 6) return std::nullopt;
  return out;
}

class Kubeconfig {
 public:
  explicit Kubeconfig(std::string path)
      : path_(std::move(path)), dir_(std::filesystem::path(path_).parent_path()) {}

  Error fail(std::string_view field, std::string_view problem) const {
    std::string msg = "kubeconfig " + path_;
    if (!field.empty()) msg += ": " + std::string(field);
    msg += ": " + std::string(problem);
    return make_error(ErrorKind::Config, std::move(msg));
  }

  std::string resolve(const std::string& file) const {
    std::filesystem::path p(file);
    if (p.is_relative() && !dir_.empty()) p = dir_ / p;
    return p.string();
  }

  // Reads `<field>` (a file path) or `<field>-data` (base64) under `node`.
  Result<std::string> material(const YAML::Node& node, const std::string& prefix,
                               const std::string& key, bool& present) const {
    present = false;
    if (auto data = node[key + "-data"]) {
      present = true;
      auto decoded = base64_decode(data.as<std::string>(""));
      if (!decoded) return fail(prefix + key + "-data", "invalid base64");
      return *decoded;
    }
    if (auto file = node[key]) {
      present = true;
      std::string path = resolve(file.as<std::string>(""));
      std::string text;
      switch (read_file(path, text)) {
        case ReadStatus::Ok: return text;
        case ReadStatus::NotFound: return fail(prefix + key, "file not found: " + path);
        case ReadStatus::Failed: return fail(prefix + key, "cannot read " + path);
      }
    }
    return std::string{};
  }

  // The entry `name` of the list `list_key`, and its index for messages.
  Result<std::pair<YAML::Node, std::size_t>> find(const YAML::Node& root, const char* list_key,
                                                  const std::string& name,
                                                  std::string_view referrer) const {
    YAML::Node list = root[list_key];
    if (list && !list.IsSequence()) return fail(list_key, "must be a list");
    if (list) {
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (list[i]["name"].as<std::string>("") == name) return std::pair{list[i], i};
      }
    }
    return fail(referrer, std::string("no entry named \"") + name + "\" in " + list_key);
  }

  Result<ClientConfig> load(std::string_view wanted_context) const;

 private:
  Result<void> apply_cluster(const YAML::Node& cluster, const std::string& prefix,
                             ClientConfig& cfg) const;
  Result<void> apply_user(const YAML::Node& user, const std::string& prefix,
                          ClientConfig& cfg) const;

 private:
  std::string path_;
  std::filesystem::path dir_;
};

Result<void> Kubeconfig::apply_cluster(const YAML::Node& cluster, const std::string& prefix,
                                       ClientConfig& cfg) const {
  std::string server = cluster["server"].as<std::string>("");
  if (server.empty()) return fail(prefix + "server", "missing");
  if (auto r = cfg.set_server(server, prefix + "server"); !r) return r.error();
  cfg.tls_server_name = cluster["tls-server-name"].as<std::string>(cfg.host);
  cfg.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>(false);
  bool present = false;
  auto ca = material(cluster, prefix, "certificate-authority", present);
  if (!ca) return ca.error();
  cfg.ca_pem = std::move(*ca);
  return {};
}

Result<void> Kubeconfig::apply_user(const YAML::Node& user, const std::string& prefix,
                                    ClientConfig& cfg) const {
  bool has_cert = false, has_key = false;
  auto cert = material(user, prefix, "client-certificate", has_cert);
  if (!cert) return cert.error();
  auto key = material(user, prefix, "client-key", has_key);
  if (!key) return key.error();
  if (has_cert != has_key) {
    return fail(prefix + (has_cert ? "client-key" : "client-certificate"),
                "missing (client-certificate and client-key go together)");
  }
  cfg.client_cert_pem = std::move(*cert);
  cfg.client_key_pem = std::move(*key);
  if (auto tok = user["token"]) {
    cfg.token = TokenSource::fixed(tok.as<std::string>(""));
  } else if (auto tf = user["tokenFile"]) {
    std::string path = resolve(tf.as<std::string>(""));
    std::string probe;
    if (read_file(path, probe) != ReadStatus::Ok) {
      return fail(prefix + "tokenFile", "file not found: " + path);
    }
    cfg.token = TokenSource::file(path);
  }
  return {};
}

Result<ClientConfig> Kubeconfig::load(std::string_view wanted_context) const {
  std::string text;
  switch (read_file(path_, text)) {
    case ReadStatus::Ok: break;
    case ReadStatus::NotFound: return fail("", "file not found");
    case ReadStatus::Failed: return fail("", "cannot read file");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return fail("", "invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (!root.IsMap()) return fail("", "not a YAML mapping");

  try {
    std::string context_name(wanted_context);
    std::string context_field = "context";
    if (context_name.empty()) {
      context_name = root["current-context"].as<std::string>("");
      context_field = "current-context";
      if (context_name.empty()) return fail("current-context", "not set and no context given");
    }
    auto ctx = find(root, "contexts", context_name, context_field);
    if (!ctx) return ctx.error();
    std::string ctx_prefix = "contexts[" + std::to_string(ctx->second) + "].context.";
    YAML::Node context = ctx->first["context"];
    if (!context.IsMap()) return fail(ctx_prefix.substr(0, ctx_prefix.size() - 1), "missing");

    ClientConfig cfg;
    cfg.origin = "kubeconfig " + path_;
    cfg.default_namespace = context["namespace"].as<std::string>("default");

    std::string cluster_name = context["cluster"].as<std::string>("");
    if (cluster_name.empty()) return fail(ctx_prefix + "cluster", "missing");
    auto cl = find(root, "clusters", cluster_name, ctx_prefix + "cluster");
    if (!cl) return cl.error();
    std::string cl_prefix = "clusters[" + std::to_string(cl->second) + "].cluster.";
    YAML::Node cluster = cl->first["cluster"];
    if (!cluster.IsMap()) return fail(cl_prefix.substr(0, cl_prefix.size() - 1), "missing");

    if (auto r = apply_cluster(cluster, cl_prefix, cfg); !r) return r.error();

    std::string user_name = context["user"].as<std::string>("");
    if (!user_name.empty()) {
      auto us = find(root, "users", user_name, ctx_prefix + "user");
      if (!us) return us.error();
      std::string us_prefix = "users[" + std::to_string(us->second) + "].user.";
      YAML::Node user = us->first["user"];
      if (user && !user.IsMap()) return fail(us_prefix.substr(0, us_prefix.size() - 1), "must be a mapping");
      if (user) {
        if (auto r = apply_user(user, us_prefix, cfg); !r) return r.error();
      }
    }
    return cfg;
  } catch (const YAML::Exception& e) {
    return fail("", "unexpected value at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace

TokenSource TokenSource::fixed(std::string token) {
  TokenSource t;
  t.token_ = trim(std::move(token));
  return t;
}

TokenSource TokenSource::file(std::string path) {
  TokenSource t;
  t.path_ = std::move(path);
  return t;
}

bool TokenSource::empty() const { return token_.empty() && path_.empty(); }

std::string TokenSource::current() const {
  if (path_.empty()) return token_;
  std::lock_guard lock(state_->mu);
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    spdlog::warn("kube: token file {} is unreadable; keeping the previous token", path_);
    return state_->token;
  }
  std::int64_t mtime = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  auto inode = static_cast<std::uint64_t>(st.st_ino);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (mtime == state_->mtime_ns && inode == state_->inode && size == state_->size) {
    return state_->token;
  }
  std::string text;
  if (read_file(path_, text) != ReadStatus::Ok) {
    spdlog::warn("kube: cannot read token file {}; keeping the previous token", path_);
    return state_->token;
  }
  state_->token = trim(std::move(text));
  state_->mtime_ns = mtime;
  state_->inode = inode;
  state_->size = size;
  return state_->token;
}

Result<void> ClientConfig::set_server(std::string_view url, std::string_view field) {
  auto bad = [&](std::string problem) {
    return make_error(ErrorKind::Config, origin + ": " + std::string(field) + ": " + problem);
  };
  auto sep = url.find("://");
  if (sep == std::string_view::npos) return bad("not a URL: \"" + std::string(url) + "\"");
  scheme = std::string(url.substr(0, sep));
  if (scheme != "https" && scheme != "http") return bad("unsupported scheme \"" + scheme + "\"");
  std::string_view rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find('/'));
  if (rest.empty()) return bad("no host in \"" + std::string(url) + "\"");
  std::string_view h = rest;
  std::string_view p;
  if (rest.front() == '[') {  // [v6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("bad IPv6 host in \"" + std::string(url) + "\"");
    h = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') p = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    h = rest.substr(0, colon);
    p = rest.substr(colon + 1);
  }
  host = std::string(h);
  port = p.empty() ? (scheme == "https" ? "443" : "80") : std::string(p);
  if (port.find_first_not_of("0123456789") != std::string::npos) {
    return bad("bad port in \"" + std::string(url) + "\"");
  }
  server = std::string(url);
  if (tls_server_name.empty()) tls_server_name = host;
  return {};
}

Result<ClientConfig> load_kubeconfig(const std::string& path, std::string_view context) {
  return Kubeconfig(path).load(context);
}

InClusterSource InClusterSource::from_environment() {
  InClusterSource s;
  if (const char* h = std::getenv("KUBERNETES_SERVICE_HOST")) s.host = h;
  if (const char* p = std::getenv("KUBERNETES_SERVICE_PORT")) s.port = p;
  return s;
}

Result<ClientConfig> load_in_cluster(const InClusterSource& src) {
  auto fail = [](std::string what) {
    return make_error(ErrorKind::Config, "in-cluster: " + what);
  };
  if (src.host.empty()) return fail("KUBERNETES_SERVICE_HOST is not set");
  if (src.port.empty()) return fail("KUBERNETES_SERVICE_PORT is not set");
  ClientConfig cfg;
  cfg.origin = "in-cluster";
  bool v6 = src.host.find(':') != std::string::npos;
  std::string url = "https://" + (v6 ? "[" + src.host + "]" : src.host) + ":" + src.port;
  if (auto r = cfg.set_server(url, "KUBERNETES_SERVICE_HOST/_PORT"); !r) return r.error();

  std::string text;
  switch (read_file(src.token_file, text)) {
    case ReadStatus::Ok: break;
    case ReadStatus::NotFound: return fail("token file " + src.token_file + ": file not found");
    case ReadStatus::Failed: return fail("token file " + src.token_file + ": cannot read");
  }
  cfg.token = TokenSource::file(src.token_file);
  switch (read_file(src.ca_file, cfg.ca_pem)) {
    case ReadStatus::Ok: break;
    case ReadStatus::NotFound: return fail("CA file " + src.ca_file + ": file not found");
    case ReadStatus::Failed: return fail("CA file " + src.ca_file + ": cannot read");
  }
  if (read_file(src.namespace_file, text) == ReadStatus::Ok && !trim(text).empty()) {
    cfg.default_namespace = trim(text);
  }
  return cfg;
}

}  // namespace edgehub::kube

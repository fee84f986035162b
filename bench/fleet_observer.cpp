// fleet_observer: what the control plane sees of an edge fleet, for bench/fleet.sh.
//
// Lists and watches Nodes and the Leases in kube-node-lease (kube::Reflector, as a
// controller would) and, once a second, computes every Lease's age: now − spec.renewTime.
// A Lease older than --stale-after seconds (the node monitor's 40 s grace period) is a node
// the node lifecycle controller would mark NotReady; each one is logged when it first goes
// stale, and counted. Every --interval seconds it prints one line:
//
//   observer t=<s> nodes=<n> ready=<n> leases=<n> lease_age_max=<s> stale_now=<n> stale_ever=<n>
//
// and at the end (after --duration seconds, or on SIGINT / SIGTERM) a summary of the run.
//
// With --status FILE the same line is also written to FILE every second (replaced whole), for
// scripts that wait for the fleet.
//
//   fleet_observer --kubeconfig FILE [--interval 30] [--stale-after 40] [--duration 0]
//                  [--status FILE]

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/reflector.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace kube = edgehub::kube;

struct Options {
  std::string kubeconfig;
  double interval = 30;
  double stale_after = 40;
  double duration = 0;
  std::string status;
};

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// RFC 3339 in UTC as the API writes MicroTime ("2026-12-08T01:44:00.123456Z"), in Unix seconds.
std::optional<double> parse_time(std::string_view text) {
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double fraction = 0;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < s.size() && s[i] == '.') {
    double scale = 0.1;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, scale /= 10) fraction += (s[i] - '0') * scale;
  }
  if (i >= s.size() || s[i] != 'Z') return std::nullopt;  // the API server writes UTC only
  return static_cast<double>(timegm(&tm)) + fraction;
}

// spec.renewTime found by scanning the raw text: thousands of Lease events a second are
// cheaper to scan than to parse.
std::optional<double> renew_time(const kube::Object& lease) {
  constexpr std::string_view kField = R"("renewTime":")";
  const auto at = lease.raw.find(kField);
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + kField.size();
  const auto end = lease.raw.find('"', begin);
  if (end == std::string::npos) return std::nullopt;
  return parse_time(std::string_view(lease.raw).substr(begin, end - begin));
}

bool node_ready(const kube::Object& node) {
  const auto json = node.json();
  if (json.is_discarded()) return false;
  const auto status = json.find("status");
  if (status == json.end() || !status->is_object()) return false;
  const auto conditions = status->find("conditions");
  if (conditions == status->end() || !conditions->is_array()) return false;
  for (const auto& c : *conditions) {
    if (c.is_object() && c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

class Nodes : public kube::ReflectorHandler {
 public:
  void on_added(const kube::Object& obj) override { ready_[obj.meta.name] = node_ready(obj); }
  void on_modified(const kube::Object& obj) override { on_added(obj); }
  void on_deleted(const kube::Object& obj) override { ready_.erase(obj.meta.name); }
  void on_resynced(const std::vector<kube::Object>& current) override {
    ready_.clear();
    for (const auto& obj : current) on_added(obj);
  }
  std::size_t size() const { return ready_.size(); }
  std::size_t ready() const {
    std::size_t n = 0;
    for (const auto& [name, ready] : ready_) n += ready ? 1 : 0;
    return n;
  }

 private:
  std::unordered_map<std::string, bool> ready_;
};

class Leases : public kube::ReflectorHandler {
 public:
  explicit Leases(double stale_after) : stale_after_(stale_after) {}

  void on_added(const kube::Object& obj) override {
    if (const auto t = renew_time(obj)) {
      renewed_[obj.meta.name] = *t;
    } else {
      ++unreadable_;
    }
    ++events_;
  }
  void on_modified(const kube::Object& obj) override { on_added(obj); }
  void on_deleted(const kube::Object& obj) override { renewed_.erase(obj.meta.name); }
  void on_resynced(const std::vector<kube::Object>& current) override {
    renewed_.clear();
    for (const auto& obj : current) on_added(obj);
  }

  // Once a second: every Lease's age now.
  void check(double now) {
    age_max_now_ = 0;
    stale_now_ = 0;
    for (const auto& [name, renewed] : renewed_) {
      const double age = now - renewed;
      age_max_now_ = std::max(age_max_now_, age);
      if (age <= stale_after_) continue;
      ++stale_now_;
      // The first ones by name; the end of the run lists them all by count.
      if (stale_ever_.insert(name).second && stale_ever_.size() <= 20) {
        std::printf("observer: Lease %s is %.1f s old\n", name.c_str(), age);
        std::fflush(stdout);
      }
    }
    age_max_ever_ = std::max(age_max_ever_, age_max_now_);
  }

  std::size_t size() const { return renewed_.size(); }
  double age_max_now() const { return age_max_now_; }
  double age_max_ever() const { return age_max_ever_; }
  std::size_t stale_now() const { return stale_now_; }
  const std::set<std::string>& stale_ever() const { return stale_ever_; }
  std::uint64_t events() const { return events_; }
  std::uint64_t unreadable() const { return unreadable_; }

 private:
  double stale_after_;
  std::unordered_map<std::string, double> renewed_;
  std::set<std::string> stale_ever_;
  double age_max_now_ = 0;
  double age_max_ever_ = 0;
  std::size_t stale_now_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t unreadable_ = 0;
};

void write_status(const std::string& path, const char* line) {
  const std::string partial = path + ".partial";
  if (std::FILE* f = std::fopen(partial.c_str(), "w")) {
    std::fputs(line, f);
    std::fclose(f);
    std::rename(partial.c_str(), path.c_str());
  }
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "fleet_observer: %s\nusage: fleet_observer --kubeconfig FILE [--interval 30] "
               "[--stale-after 40] [--duration 0] [--status FILE]\n",
               why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    const std::string value = argv[++i];
    try {
      if (flag == "--kubeconfig") o.kubeconfig = value;
      else if (flag == "--interval") o.interval = std::stod(value);
      else if (flag == "--stale-after") o.stale_after = std::stod(value);
      else if (flag == "--duration") o.duration = std::stod(value);
      else if (flag == "--status") o.status = value;
      else usage(("unknown flag " + flag).c_str());
    } catch (const std::exception&) {
      usage(("bad value for " + flag + ": " + value).c_str());
    }
  }
  if (o.kubeconfig.empty()) usage("--kubeconfig is required");
  if (o.interval <= 0 || o.stale_after <= 0 || o.duration < 0) {
    usage("--interval and --stale-after must be positive, --duration not negative");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  auto config = kube::load_kubeconfig(o.kubeconfig);
  if (!config) {
    std::fprintf(stderr, "fleet_observer: %s\n", config.error().describe().c_str());
    return 1;
  }
  asio::io_context io(1);
  kube::ClientOptions client_options;
  client_options.qps = 0;  // two lists and two watches
  auto client = kube::Client::make(io.get_executor(), *config, client_options);
  if (!client) {
    std::fprintf(stderr, "fleet_observer: %s\n", client.error().describe().c_str());
    return 1;
  }

  Nodes nodes;
  Leases leases(o.stale_after);
  kube::ReflectorOptions node_options{.resource = kube::resources::nodes()};
  node_options.initial_list_resource_version = "0";
  kube::ReflectorOptions lease_options{.resource = kube::resources::leases()};
  lease_options.namespace_ = "kube-node-lease";
  lease_options.initial_list_resource_version = "0";
  auto node_reflector = kube::Reflector::make(*client, node_options, nodes);
  auto lease_reflector = kube::Reflector::make(*client, lease_options, leases);
  node_reflector->start();
  lease_reflector->start();

  const double start = unix_now();
  double next_line = start + o.interval;
  asio::steady_timer tick(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  bool done = false;
  auto finish = [&] {
    if (done) return;
    done = true;
    tick.cancel();
    signals.cancel();
    node_reflector->stop();
    lease_reflector->stop();
    io.stop();
  };
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) finish();
  });
  std::function<void(const boost::system::error_code&)> on_tick = [&](const boost::system::error_code& ec) {
    if (ec || done) return;
    const double now = unix_now();
    leases.check(now);
    char line[256];
    std::snprintf(line, sizeof line,
                  "observer t=%.0f nodes=%zu ready=%zu leases=%zu lease_age_max=%.1f stale_now=%zu "
                  "stale_ever=%zu\n",
                  now - start, nodes.size(), nodes.ready(), leases.size(), leases.age_max_now(),
                  leases.stale_now(), leases.stale_ever().size());
    if (now >= next_line) {
      next_line += o.interval;
      std::fputs(line, stdout);
      std::fflush(stdout);
    }
    if (!o.status.empty()) write_status(o.status, line);
    if (o.duration > 0 && now - start >= o.duration) return finish();
    tick.expires_after(std::chrono::seconds(1));
    tick.async_wait(on_tick);
  };
  tick.expires_after(std::chrono::seconds(1));
  tick.async_wait(on_tick);
  try {
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fleet_observer: %s\n", e.what());
    return 1;
  }

  leases.check(unix_now());
  std::printf("observer end: %zu Nodes, %zu Ready, %zu Leases; Lease age max over the run %.1f s; "
              "Leases ever older than %.0f s: %zu; Lease events %llu (%llu without a readable renewTime)\n",
              nodes.size(), nodes.ready(), leases.size(), leases.age_max_ever(), o.stale_after,
              leases.stale_ever().size(), static_cast<unsigned long long>(leases.events()),
              static_cast<unsigned long long>(leases.unreadable()));
  if (!leases.stale_ever().empty()) {
    std::string names;
    std::size_t shown = 0;
    for (const auto& name : leases.stale_ever()) {
      if (shown++ == 20) {
        names += " …";
        break;
      }
      names += " " + name;
    }
    std::printf("observer end: stale Leases:%s\n", names.c_str());
  }
  return 0;
}

// edgehub: the cloud-side hub for KubeEdge edge agents. main() only parses flags, loads the
// configuration and hands over to the modules.
#include <CLI/CLI.hpp>
#include <edgehub/config/config.hpp>
#include <edgehub/logging/logging.hpp>
#include <edgehub/version.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

namespace {

struct Options {
  std::string config_file;
  bool check = false;
  edgehub::config::Overrides overrides;
};

void add_run_flags(CLI::App& app, Options& o) {
  app.add_option("-c,--config", o.config_file, "Configuration file (YAML); defaults if omitted");
  app.add_flag("--check", o.check, "Validate the configuration and exit 0 (valid) or 1");
  app.add_flag("--dev", o.overrides.dev,
               "Development mode: embedded API server and dev certificates, loopback only");
  app.add_option("--kubeconfig", o.overrides.kubeconfig, "Kubeconfig file (kube.kubeconfig)");
  app.add_option("--listen", o.overrides.listen, "Edge WebSocket address HOST:PORT (hub.listen)");
  app.add_option("--metrics-listen", o.overrides.metrics_listen,
                 "Metrics and health address HOST:PORT (metrics.listen)");
  app.add_option("--hub-id", o.overrides.hub_id, "Replica identity (hub.id)");
  app.add_option("--log-level", o.overrides.log_level,
                 "trace, debug, info, warn or error (log.level)");
  app.add_option("--log-format", o.overrides.log_format, "text or json (log.format)");
}

int run(const Options& o) {
  auto loaded = edgehub::config::load(o.config_file, o.overrides);
  if (!loaded) {
    for (const auto& error : loaded.error()) std::cerr << "edgehub: " << error.to_string() << "\n";
    return 1;
  }
  if (o.check) {
    std::cout << (o.config_file.empty() ? "defaults" : o.config_file) << ": OK\n";
    return 0;
  }
  const auto& config = *loaded;
  edgehub::logging::setup(config.log.level, config.log.format);
  spdlog::info("edgehub {} starting as {} (dev mode: {})", edgehub::kVersion, config.hub.id,
               config.dev_mode);
  spdlog::error(
      "edgehub {}: the hub core (edge sessions, delivery) and the embedded API server are not "
      "built yet; only --check and config-reference work in this version",
      edgehub::kVersion);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"edgehub — cloud hub for KubeEdge edge nodes (WebSocket+TLS on :10000)"};
  app.set_version_flag("--version", edgehub::kVersion);
  Options options;
  add_run_flags(app, options);

  auto* reference = app.add_subcommand(
      "config-reference", "Print every configuration key with its default (Markdown)");

  CLI11_PARSE(app, argc, argv);
  if (reference->parsed()) {
    std::cout << edgehub::config::reference_markdown();
    return 0;
  }
  return run(options);
}

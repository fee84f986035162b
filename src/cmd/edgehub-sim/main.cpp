// edgehub-sim: a fleet of simulated KubeEdge edge nodes in one process.
#include <CLI/CLI.hpp>
#include <edgehub/version.hpp>

int main(int argc, char** argv) {
  CLI::App app{"edgehub-sim — simulated KubeEdge edge fleet"};
  app.set_version_flag("--version", edgehub::kVersion);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

// edgehub: the cloud-side hub for KubeEdge edge agents.
#include <CLI/CLI.hpp>
#include <edgehub/version.hpp>

int main(int argc, char** argv) {
  CLI::App app{"edgehub — cloud hub for KubeEdge edge nodes"};
  app.set_version_flag("--version", edgehub::kVersion);
  CLI11_PARSE(app, argc, argv);
  return 0;
}

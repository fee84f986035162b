#pragma once
// Reads the recorded cloudcore<->edgecore WebSocket captures (test/data/kubeedge-captures).

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgehub::wire::test {

struct Frame {
  std::string file;
  std::string direction;  // "up" (edge -> cloud) or "down"
  std::string payload;
};

inline std::vector<Frame> load_captures() {
  namespace fs = std::filesystem;
  std::vector<Frame> frames;
  const fs::path root = fs::path(EDGEHUB_TEST_DATA) / "kubeedge-captures";
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".jsonl") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      const auto record = nlohmann::json::parse(line);
      if (!record.contains("payload")) continue;
      frames.push_back({fs::relative(entry.path(), root).string(), record.at("dir"),
                        record.at("payload")});
    }
  }
  return frames;
}

}  // namespace edgehub::wire::test

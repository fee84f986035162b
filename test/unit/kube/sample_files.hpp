#pragma once

// Access to the recorded kube-apiserver answers in test/data/kube-samples.

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace edgehub::kube::testing {

inline std::filesystem::path samples_dir() {
  return std::filesystem::path(EDGEHUB_TEST_DATA) / "kube-samples";
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Sample {
  std::string version;  // "v1.36.3"
  std::string name;     // "get-pod-404"
  std::string request;  // first line of .request
  int status = 0;       // from the .headers status line
  std::string body;
};

inline Sample load_sample(const std::string& version, const std::string& name) {
  Sample s;
  s.version = version;
  s.name = name;
  auto base = samples_dir() / version / name;
  std::istringstream req(slurp(base.string() + ".request"));
  std::getline(req, s.request);
  std::istringstream hdr(slurp(base.string() + ".headers"));
  std::string proto;
  hdr >> proto >> s.status;
  s.body = slurp(base.string() + ".body");
  return s;
}

inline std::vector<Sample> all_samples() {
  std::vector<Sample> out;
  for (const auto& vdir : std::filesystem::directory_iterator(samples_dir())) {
    if (!vdir.is_directory()) continue;
    for (const auto& f : std::filesystem::directory_iterator(vdir.path())) {
      if (f.path().extension() != ".body") continue;
      out.push_back(load_sample(vdir.path().filename().string(), f.path().stem().string()));
    }
  }
  return out;
}

inline bool is_watch(const Sample& s) {
  return s.request.find("watch=") != std::string::npos && s.status / 100 == 2;
}

}  // namespace edgehub::kube::testing

// Drives the real kubectl (found on PATH) against the server through a kubeconfig written by
// Server::write_kubeconfig: create, get -o json, get -w, label, patch, apply, delete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <edgehub/devapi/server.hpp>
#include <filesystem>
#include <fstream>

#include "process.hpp"

namespace edgehub::devapi {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string find_kubectl() {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    const auto colon = dirs.find(':', start);
    const std::string dir = dirs.substr(start, colon == std::string::npos ? colon : colon - start);
    if (!dir.empty() && ::access((dir + "/kubectl").c_str(), X_OK) == 0) return dir + "/kubectl";
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

// A child process with its stdout (and stderr) on a pipe.
class Child {
 public:
  Child(const std::string& binary, const std::vector<std::string>& args) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> argv{binary};
    argv.insert(argv.end(), args.begin(), args.end());
    try {
      pid_ = test::spawn(argv, {.stdout_fd = fds[1], .stderr_fd = fds[1]});
    } catch (...) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw;
    }
    ::close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // Reads until `needle` appears in the output; false on EOF or when the deadline passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds budget) {
    return read_while([&] { return output_.find(needle) == std::string::npos; }, budget);
  }
  // Until the line holding `needle` is complete (kubectl may flush a row in pieces).
  bool read_line_with(const std::string& needle, std::chrono::milliseconds budget) {
    return read_while(
        [&] {
          const auto at = output_.find(needle);
          return at == std::string::npos || output_.find('\n', at) == std::string::npos;
        },
        budget);
  }
  template <class More>
  bool read_while(More more, std::chrono::milliseconds budget) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    while (more()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      output_.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }

  // Waits for exit (bounded); returns the exit status, or -1 on timeout.
  int wait(std::chrono::milliseconds budget) {
    if (read_until("\x01never\x01", budget) || !eof_) return -1;  // deadline passed
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return -1;  // stdout closed: it is exiting
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool eof_ = false;
  std::string output_;
};

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubectl_ = find_kubectl();
    if (kubectl_.empty()) GTEST_SKIP() << "kubectl not found on PATH; skipping the kubectl test";
    dir_ = fs::temp_directory_path() / ("devapi-kubectl-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    server_.start();
    kubeconfig_ = (dir_ / "kubeconfig").string();
    server_.write_kubeconfig(kubeconfig_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs kubectl to completion; returns its combined output, failing the test on non-zero exit.
  std::string run(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"--kubeconfig", kubeconfig_, "--cache-dir", (dir_ / "cache").string()});
    Child child(kubectl_, args);
    const int status = child.wait(std::chrono::seconds(60));
    EXPECT_EQ(status, 0) << "kubectl " << args.back() << " failed:\n" << child.output();
    return child.output();
  }

  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  json pod() { return server_.store().get(resource_by_name("pods"), "default", "web"); }

  Server server_{ServerOptions{}};
  std::string kubectl_;
  fs::path dir_;
  std::string kubeconfig_;
};

constexpr const char* kPodYaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: demo
spec:
  nodeName: edge-1
  containers:
  - name: c
    image: registry.invalid/busybox:1.36
)";

TEST_F(KubectlTest, CreateGetWatchLabelPatchApplyDelete) {
  EXPECT_NE(run({"create", "-f", write("pod.yaml", kPodYaml)}).find("pod/web created"),
            std::string::npos);

  const json got = json::parse(run({"get", "pod", "web", "-o", "json"}));
  EXPECT_EQ(got["metadata"]["name"], "web");
  EXPECT_EQ(got["spec"]["nodeName"], "edge-1");
  EXPECT_EQ(json::parse(run({"get", "pods", "-o", "json"}))["items"].size(), 1U);

  {
    Child watch(kubectl_, {"--kubeconfig", kubeconfig_, "--cache-dir", (dir_ / "cache").string(),
                           "get", "pods", "-w", "-o",
                           R"(jsonpath={.metadata.name} stage={.metadata.labels.stage}{"\n"})"});
    ASSERT_TRUE(watch.read_until("web stage=", std::chrono::seconds(30))) << watch.output();
    server_.store().patch(resource_by_name("pods"), "default", "web", PatchType::kMerge,
                          {{"metadata", {{"labels", {{"stage", "two"}}}}}});
    EXPECT_TRUE(watch.read_until("web stage=two", std::chrono::seconds(30))) << watch.output();
  }

  EXPECT_NE(run({"label", "pod", "web", "tier=front"}).find("pod/web labeled"), std::string::npos);
  EXPECT_EQ(pod()["metadata"]["labels"]["tier"], "front");

  run({"patch", "pod", "web", "--type=merge", "-p",
       R"({"metadata":{"annotations":{"note":"hi"}}})"});
  EXPECT_EQ(pod()["metadata"]["annotations"]["note"], "hi");

  std::string changed = kPodYaml;
  changed.replace(changed.find("app: demo"), 9, "app: demo2");
  run({"apply", "-f", write("pod2.yaml", changed)});
  EXPECT_EQ(pod()["metadata"]["labels"]["app"], "demo2");
  EXPECT_TRUE(pod()["metadata"]["annotations"].contains(
      "kubectl.kubernetes.io/last-applied-configuration"));

  // Client-side apply of a new object, then of a change to it.
  const std::string cm =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n";
  EXPECT_NE(run({"apply", "-f", write("cm.yaml", cm)}).find("configmap/settings created"),
            std::string::npos);
  std::string cm2 = cm;
  cm2.replace(cm2.find("a: \"1\""), 6, "b: \"2\"");
  EXPECT_NE(run({"apply", "-f", write("cm2.yaml", cm2)}).find("configmap/settings configured"),
            std::string::npos);
  const json settings = server_.store().get(resource_by_name("configmaps"), "default", "settings");
  EXPECT_EQ(settings["data"], (json{{"b", "2"}}));
  EXPECT_TRUE(settings["metadata"]["annotations"].contains(
      "kubectl.kubernetes.io/last-applied-configuration"));

  run({"delete", "pod", "web", "--wait=false"});
  EXPECT_TRUE(pod()["metadata"].contains("deletionTimestamp"));
  run({"delete", "pod", "web", "--grace-period=0", "--force"});
  EXPECT_EQ(json::parse(run({"get", "pods", "-o", "json"}))["items"].size(), 0U);
  run({"delete", "configmap", "settings"});
}

// `kubectl get` asks for server-side Tables and prints their columns.
TEST_F(KubectlTest, GetPrintsTheServersTables) {
  Store& store = server_.store();
  store.create("nodes", "", {{"metadata", {{"name", "edge-1"}, {"labels", {{"node-role.kubernetes.io/edge", ""}}}}}});
  store.update("nodes", "", "edge-1",
               {{"status",
                 {{"conditions", {{{"type", "Ready"}, {"status", "True"}}}},
                  {"nodeInfo", {{"kubeletVersion", "v1.32.10-kubeedge"}}}}}},
               true);
  store.create("nodes", "", {{"metadata", {{"name", "edge-2"}}}});
  store.create("pods", "default",
               {{"metadata", {{"name", "web"}}},
                {"spec", {{"nodeName", "edge-1"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}});
  store.update("pods", "default", "web", {{"status", {{"phase", "Running"}, {"podIP", "10.1.2.3"}}}},
               true);

  // Columns are padded by kubectl; compare with runs of spaces squeezed.
  auto squeezed = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == ' ' && !out.empty() && out.back() == ' ') continue;
      out += c;
    }
    return out;
  };
  const std::string nodes = squeezed(run({"get", "nodes"}));
  EXPECT_NE(nodes.find("NAME STATUS ROLES AGE VERSION\n"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("edge-1 Ready edge "), std::string::npos) << nodes;
  EXPECT_NE(nodes.find(" v1.32.10-kubeedge\n"), std::string::npos) << nodes;
  EXPECT_NE(nodes.find("edge-2 Unknown <none> "), std::string::npos) << nodes;

  const std::string pods = squeezed(run({"get", "pods", "-o", "wide"}));
  EXPECT_NE(pods.find("NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES\n"),
            std::string::npos)
      << pods;
  EXPECT_NE(pods.find("web 0/1 Running 0 "), std::string::npos) << pods;
  EXPECT_NE(pods.find(" 10.1.2.3 edge-1 <none> <none>\n"), std::string::npos) << pods;

  const std::string one = squeezed(run({"get", "node", "edge-1", "--no-headers"}));
  EXPECT_EQ(one.rfind("edge-1 Ready edge ", 0), 0u) << one;

  // Watching: the changes come as Table rows too.
  Child watch(kubectl_, {"--kubeconfig", kubeconfig_, "--cache-dir", (dir_ / "cache").string(),
                         "get", "pods", "-w"});
  ASSERT_TRUE(watch.read_until("Running", std::chrono::seconds(30))) << watch.output();
  store.patch(resource_by_name("pods"), "default", "web", PatchType::kMerge,
              {{"status", {{"phase", "Succeeded"}}}}, true);
  EXPECT_TRUE(watch.read_line_with("Succeeded", std::chrono::seconds(30))) << watch.output();
  EXPECT_NE(squeezed(watch.output()).find("web 0/1 Succeeded 0 "), std::string::npos)
      << watch.output();
}

// kubectl's generators post protobuf bodies; the server decodes those kinds.
TEST_F(KubectlTest, GeneratorsThatPostProtobuf) {
  EXPECT_NE(run({"create", "namespace", "team"}).find("namespace/team created"), std::string::npos);
  run({"-n", "team", "create", "configmap", "cfg", "--from-literal=a=b"});
  run({"-n", "team", "create", "secret", "generic", "pw", "--from-literal=pw=hunter2"});
  run({"-n", "team", "create", "serviceaccount", "robot"});
  Store& store = server_.store();
  EXPECT_EQ(store.get("namespaces", "", "team")["status"]["phase"], "Active");
  EXPECT_EQ(store.get("configmaps", "team", "cfg")["data"], (json{{"a", "b"}}));
  const json secret = store.get("secrets", "team", "pw");
  EXPECT_EQ(secret["data"]["pw"], "aHVudGVyMg==");
  EXPECT_EQ(secret["type"], "Opaque");
  EXPECT_EQ(store.get("serviceaccounts", "team", "robot")["metadata"]["namespace"], "team");
  run({"delete", "namespace", "team"});
  EXPECT_EQ(store.list("configmaps", "team")["items"].size(), 0U);
}

}  // namespace
}  // namespace edgehub::devapi

#pragma once
// Runs the project's real programs from tests: a finished command with its output, or a
// child kept running in the background and stopped with a signal.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace edgehub::test {

struct Output {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// Where a spawned program's standard streams go (-1: inherited) and what it gets besides.
struct SpawnOptions {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::string log_file;              // stdout and stderr appended here (overrides the fds)
  std::vector<std::string> env;      // NAME=value added to this process's environment
  bool search_path = false;          // argv[0] may be a bare name looked up in PATH
};

// Starts argv with posix_spawn: nothing runs between fork and exec. The test processes have
// threads (hubs, API servers); a forked child that allocates before exec can deadlock on a
// lock another thread held at the fork (it did, under ASan: a simulator that never started).
// Throws when the program cannot be started.
pid_t spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {});

// Runs argv[0] (a path) to completion, killing it after `timeout`.
Output run(const std::vector<std::string>& argv,
           std::chrono::milliseconds timeout = std::chrono::seconds(60));

class Child {
 public:
  // Starts argv with stdout and stderr appended to `log_file` (empty: inherited).
  Child(const std::vector<std::string>& argv, const std::string& log_file = {});
  ~Child();  // SIGKILL if still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; nullopt on timeout. Returns the exit code (128 + signal when signalled).
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Path of a program built by this project.
std::string binary(const std::string& name);
// A program on PATH, /usr/sbin or /sbin (nginx, kubectl, curl, promtool); empty when missing.
std::string find_program(const std::string& name);

// A loopback TCP port free right now (bound to port 0, then released). The kernel may hand
// a just-closed port to the next bind: a port this process already gave out is never given
// again (two e2e replicas once got the same admin port).
std::uint16_t free_port();

}  // namespace edgehub::test

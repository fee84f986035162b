#pragma once
// Watcher: follows one resource type from *now* on, without listing it. For a hub that must
// be ready in under a second whatever the cluster's size, and that only cares about the
// objects of the nodes it owns (which it lists per node itself).
//
// It asks for the current resourceVersion with a one-item LIST, watches from there, resumes
// from the last resourceVersion seen (bookmarks included) when a watch ends, and when the
// history is gone (410) starts again from a fresh resourceVersion and calls on_gap(): events
// in between were missed, so the owner must resync what it holds.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <edgehub/kube/client.hpp>
#include <edgehub/kube/reflector.hpp>
#include <functional>
#include <memory>
#include <string>

namespace edgehub::kube {

struct WatcherOptions {
  Resource resource;
  std::string label_selector;
  std::string field_selector;
  int watch_timeout_seconds = 300;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  Priority priority = Priority::Bulk;
  std::string name;  // for log lines, e.g. "pods"
};

struct WatcherStats {
  std::uint64_t watches = 0;
  std::uint64_t events = 0;
  std::uint64_t gaps = 0;    // 410s after which events were missed
  std::uint64_t errors = 0;  // failed lists/watches, each followed by a backoff
};

class Watcher : public std::enable_shared_from_this<Watcher> {
 public:
  using OnEvent = std::function<void(WatchEvent&&)>;
  using OnGap = std::function<void()>;

  static std::shared_ptr<Watcher> make(std::shared_ptr<Client> client, WatcherOptions options,
                                       OnEvent on_event, OnGap on_gap);
  // Starts the loop on the client's executor. stop() ends it at the next event, error or
  // watch end; call both on the client's executor.
  void start();
  void stop() { stopped_ = true; }
  // True once the first watch has been established (for readiness).
  bool established() const { return established_; }
  const WatcherStats& stats() const { return stats_; }

 private:
  Watcher(std::shared_ptr<Client> client, WatcherOptions options, OnEvent on_event, OnGap on_gap);
  boost::asio::awaitable<void> run();

  std::shared_ptr<Client> client_;
  WatcherOptions options_;
  OnEvent on_event_;
  OnGap on_gap_;
  Backoff backoff_;
  bool stopped_ = false;
  bool established_ = false;
  WatcherStats stats_;
};

}  // namespace edgehub::kube

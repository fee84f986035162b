#pragma once

#include <edgehub/kube/client.hpp>

#include <boost/asio/cancellation_signal.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace edgehub::kube {

// Receives a reflector's view of one resource type, on the client's executor. Events for one
// object arrive in order.
class ReflectorHandler {
 public:
  virtual ~ReflectorHandler() = default;
  virtual void on_added(const Object& obj) = 0;
  virtual void on_modified(const Object& obj) = 0;
  // From a DELETED event (the last state of the object), or for an object found gone at a
  // relist: then only meta (namespace, name, uid, last resourceVersion) is set and raw is empty.
  virtual void on_deleted(const Object& obj) = 0;
  // After every list (the first one and each relist): the complete current set.
  virtual void on_resynced(const std::vector<Object>& current) = 0;
};

// Exponential backoff with jitter: each delay is uniform in [d/2, d], d doubling up to max.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint32_t seed);
  std::chrono::milliseconds next();
  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, current_;
  std::mt19937 rng_;
};

struct ReflectorOptions {
  Resource resource;
  std::string namespace_;  // empty: all namespaces
  std::string label_selector;
  std::string field_selector;  // e.g. "spec.nodeName!=" for pods bound to a node
  std::int64_t page_size = 500;
  // resourceVersion of the first list only: "0" lets the API server answer from its watch
  // cache (cheap at startup); relists after a 410 always read the latest state ("").
  std::string initial_list_resource_version;
  int watch_timeout_seconds = 300;  // each watch asks for a timeout in [t, 2t)
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  Priority priority = Priority::Bulk;
  std::uint32_t seed = std::random_device{}();
  std::function<void()> on_stopped;  // runs once the loop has ended after stop()
};

struct ReflectorStats {
  std::uint64_t lists = 0;
  std::uint64_t expired = 0;  // 410s (HTTP or watch ERROR) that forced a relist
  std::uint64_t watches = 0;
  std::uint64_t errors = 0;   // failed lists and watches (each followed by a backoff)
  std::uint64_t events = 0;
  std::uint64_t bookmarks = 0;
};

// List-then-watch loop for one resource type. Resumes watches from the last resourceVersion
// seen (bookmarks included), relists on 410 and emits deletes for objects that vanished
// meanwhile. It keeps only uid and resourceVersion per object key. The handler must outlive
// the loop (until on_stopped has run, or the executor has stopped).
class Reflector : public std::enable_shared_from_this<Reflector> {
 public:
  static std::shared_ptr<Reflector> make(std::shared_ptr<Client> client, ReflectorOptions options,
                                         ReflectorHandler& handler);

  // Both may be called from any thread; they post to the client's executor. No handler call
  // happens after the loop has seen the stop.
  void start();
  void stop();

  // On the client's executor only.
  bool running() const { return running_; }
  const std::string& resource_version() const { return resource_version_; }
  const ReflectorStats& stats() const { return stats_; }
  std::size_t size() const { return known_.size(); }

 private:
  struct Known {
    std::string uid;
    std::string resource_version;
  };

  Reflector(std::shared_ptr<Client> client, ReflectorOptions options, ReflectorHandler& handler);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<Result<void>> relist();
  // Watches from resource_version_; sets `expired` on a 410.
  boost::asio::awaitable<Result<void>> watch(bool& expired, bool& progressed);
  bool apply(WatchEvent&& ev, bool& expired, std::optional<Error>& failure);
  boost::asio::awaitable<void> pause(std::chrono::milliseconds delay);

  std::shared_ptr<Client> client_;
  ReflectorOptions options_;
  ReflectorHandler& handler_;
  Backoff backoff_;
  std::mt19937 rng_;
  boost::asio::cancellation_signal cancel_;
  bool running_ = false;
  bool stopped_ = false;
  std::string resource_version_;
  std::unordered_map<std::string, Known> known_;
  ReflectorStats stats_;
};

}  // namespace edgehub::kube

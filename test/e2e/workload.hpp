#pragma once
// The workload the e2e scenarios run against the fleet: per node an anchor pod that always
// references the node's configmap and secret (plus one shared configmap and an optional
// configmap that comes and goes) and a device of one shared model, and a churn driver that
// creates, updates and deletes pods, configmaps and secrets, and moves and updates devices, at
// a steady rate on its own thread.
//
// The anchor pod keeps every configmap/secret a node ever received referenced: the desired
// state of a node is then exactly "its pods and what they reference" (the hub does not delete
// objects from an edge merely because no pod references them any more).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "api.hpp"

namespace edgehub::e2e {

class Workload {
 public:
  Workload(const std::string& kubeconfig, std::vector<std::string> nodes);
  ~Workload();  // stops the churn

  // The anchors, configmaps and secrets of every node (before the fleet connects).
  void seed();
  // Churn at `ops_per_second` until stop_churn().
  void start_churn(double ops_per_second);
  void stop_churn();
  std::uint64_t operations() const { return ops_; }
  std::uint64_t failures() const { return failed_; }

  // Deletes (grace period 0) every churn pod bound to one of `nodes`; returns how many.
  std::size_t force_delete_pods_of(const std::vector<std::string>& nodes);
  // A label change on the node's anchor pod (a change only that node must receive).
  bool touch_anchor(const std::string& node);

 private:
  struct ChurnPod {
    std::string name;
    std::string node;
    bool terminating = false;
  };
  void churn_loop(double ops_per_second);
  void one_operation();
  bool create_pod(const std::string& name, const std::string& node, bool anchor);
  void check(const ApiReply& reply, const char* what);
  const std::string& random_node();

  Api api_;
  std::vector<std::string> nodes_;
  std::mt19937_64 rng_{20261127};
  std::mutex mutex_;  // churn_pods_ (the churn thread and force_delete_pods_of)
  std::vector<ChurnPod> churn_pods_;
  std::vector<bool> cm2_present_;
  std::atomic<std::uint64_t> seq_{0};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> ops_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread thread_;
};

}  // namespace edgehub::e2e

#pragma once
// One I/O thread of the fleet: its io_context, timer heap, counters and nodes.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <deque>
#include <edgehub/net/tls_context.hpp>
#include <edgehub/sim/fleet.hpp>
#include <edgehub/sim/stats.hpp>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "join.hpp"
#include "scheduler.hpp"

namespace edgehub::sim {

class Node;

struct Worker {
  Worker(const SimOptions& o, const net::TlsContext* tls_ctx, boost::asio::ip::tcp::endpoint ep)
      : options(o), tls(tls_ctx), hub(ep) {}

  const SimOptions& options;
  const net::TlsContext* tls;  // null with --insecure
  const CertServiceLink* cert_service = nullptr;  // rotation through it; null: none
  boost::asio::ip::tcp::endpoint hub;
  boost::asio::io_context ioc{1};
  Scheduler scheduler{ioc};
  WorkerStats stats;
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<std::unique_ptr<Node>> nodes;
  std::thread thread;
  bool stopping = false;

  // Dial slots: at most options.max_connecting handshakes in flight per worker.
  void want_dial(Node* node);
  void dial_done();

  double uniform(double lo, double hi) { return std::uniform_real_distribution<>(lo, hi)(rng); }

 private:
  int dialing_ = 0;
  std::deque<Node*> waiting_;
};

}  // namespace edgehub::sim

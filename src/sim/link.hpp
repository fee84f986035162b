#pragma once
#include <cstdint>
#include <memory>

#include "node.hpp"

namespace edgehub::sim {
struct Worker;
// A Link over TLS (net::TlsStream) or, with --insecure, plain TCP.
std::shared_ptr<Link> make_link(Worker& worker, Node& node, std::uint32_t epoch);
}  // namespace edgehub::sim

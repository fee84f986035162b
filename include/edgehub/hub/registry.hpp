#pragma once
// Registry: which nodes have a session on this replica, and where. Thread-safe: sessions
// register from their I/O threads; the API thread looks nodes up for every watch event.

#include <edgehub/hub/session.hpp>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace edgehub::hub {

class Registry {
 public:
  // Makes `session` the node's session; returns the one it replaces (to be closed), if any.
  std::shared_ptr<Session> claim(const std::shared_ptr<Session>& session);
  // Removes `session` if it is still its node's current session.
  bool release(const Session& session);
  std::shared_ptr<Session> find(const std::string& node) const;
  bool owns(const std::string& node) const;
  std::size_t size() const;
  std::vector<std::shared_ptr<Session>> sessions() const;

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Session>> sessions_;
};

}  // namespace edgehub::hub

#pragma once
// Registry: which nodes have a session on this replica, and where. Thread-safe: sessions
// register from their I/O threads; the API thread looks nodes up for every watch event.
//
// A session is *owning* once its node's NodeSync claim has been written (confirm()); only then
// does the replica deliver to it. Until then, and after another replica claims the node, watch
// events for the node are dropped here.

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
  // Marks the node's session `session_id` as owning; false if that session is gone.
  bool confirm(const std::string& node, std::uint64_t session_id);
  std::shared_ptr<Session> find(const std::string& node) const;
  // The node's session if it is owning.
  std::shared_ptr<Session> find_owning(const std::string& node) const;
  bool owns(const std::string& node) const;
  // Sessions open (owning or not).
  bool has_session(const std::string& node) const;
  std::size_t size() const;
  std::vector<std::shared_ptr<Session>> sessions() const;
  // The sessions whose node is not owned (yet): usually none, so a periodic look at them
  // costs one pass under the lock, not a copy of every session.
  std::vector<std::shared_ptr<Session>> not_owning() const;
  // The names of the owned nodes, sorted.
  std::vector<std::string> owned_nodes() const;

 private:
  mutable std::shared_mutex mutex_;
  struct Slot {
    std::shared_ptr<Session> session;
    bool owning = false;
  };
  std::unordered_map<std::string, Slot> sessions_;
};

}  // namespace edgehub::hub

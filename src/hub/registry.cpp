#include <edgehub/hub/registry.hpp>

#include <algorithm>
#include <mutex>

namespace edgehub::hub {

std::shared_ptr<Session> Registry::claim(const std::shared_ptr<Session>& session) {
  std::unique_lock lock(mutex_);
  auto& slot = sessions_[session->node()];
  auto previous = std::move(slot.session);
  slot = Slot{session, false};
  return previous;
}

bool Registry::release(const Session& session) {
  std::unique_lock lock(mutex_);
  const auto it = sessions_.find(session.node());
  if (it == sessions_.end() || it->second.session.get() != &session) return false;
  sessions_.erase(it);
  return true;
}

bool Registry::confirm(const std::string& node, std::uint64_t session_id) {
  std::unique_lock lock(mutex_);
  const auto it = sessions_.find(node);
  if (it == sessions_.end() || it->second.session->id() != session_id) return false;
  it->second.owning = true;
  return true;
}

std::shared_ptr<Session> Registry::find(const std::string& node) const {
  std::shared_lock lock(mutex_);
  const auto it = sessions_.find(node);
  return it == sessions_.end() ? nullptr : it->second.session;
}

std::shared_ptr<Session> Registry::find_owning(const std::string& node) const {
  std::shared_lock lock(mutex_);
  const auto it = sessions_.find(node);
  return it == sessions_.end() || !it->second.owning ? nullptr : it->second.session;
}

bool Registry::owns(const std::string& node) const {
  std::shared_lock lock(mutex_);
  const auto it = sessions_.find(node);
  return it != sessions_.end() && it->second.owning;
}

bool Registry::has_session(const std::string& node) const {
  std::shared_lock lock(mutex_);
  return sessions_.contains(node);
}

std::size_t Registry::size() const {
  std::shared_lock lock(mutex_);
  return sessions_.size();
}

std::vector<std::shared_ptr<Session>> Registry::sessions() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<Session>> out;
  out.reserve(sessions_.size());
  for (const auto& [node, slot] : sessions_) out.push_back(slot.session);
  return out;
}

std::vector<std::shared_ptr<Session>> Registry::not_owning() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<Session>> out;
  for (const auto& [node, slot] : sessions_) {
    if (!slot.owning) out.push_back(slot.session);
  }
  return out;
}

std::vector<std::string> Registry::owned_nodes() const {
  std::vector<std::string> out;
  {
    std::shared_lock lock(mutex_);
    out.reserve(sessions_.size());
    for (const auto& [node, slot] : sessions_) {
      if (slot.owning) out.push_back(node);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace edgehub::hub

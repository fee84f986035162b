#include <edgehub/hub/registry.hpp>

#include <mutex>

namespace edgehub::hub {

std::shared_ptr<Session> Registry::claim(const std::shared_ptr<Session>& session) {
  std::unique_lock lock(mutex_);
  auto& slot = sessions_[session->node()];
  auto previous = std::move(slot);
  slot = session;
  return previous;
}

bool Registry::release(const Session& session) {
  std::unique_lock lock(mutex_);
  const auto it = sessions_.find(session.node());
  if (it == sessions_.end() || it->second.get() != &session) return false;
  sessions_.erase(it);
  return true;
}

std::shared_ptr<Session> Registry::find(const std::string& node) const {
  std::shared_lock lock(mutex_);
  const auto it = sessions_.find(node);
  return it == sessions_.end() ? nullptr : it->second;
}

bool Registry::owns(const std::string& node) const {
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
  for (const auto& [node, s] : sessions_) out.push_back(s);
  return out;
}

}  // namespace edgehub::hub

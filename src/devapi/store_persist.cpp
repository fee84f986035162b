// Store persistence: the whole state as one JSON document (see Store::snapshot).
#include <edgehub/devapi/store.hpp>
#include <edgehub/wire/json_safe.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "store_detail.hpp"

namespace edgehub::devapi {

json Store::snapshot() const {
  std::lock_guard lock(mutex_);
  json objects = json::array();
  for (const auto& [resource, bucket] : buckets_) {
    for (const auto& [key, object] : bucket) {
      objects.push_back({{"resource", resource->qualified_name()}, {"object", *object}});
    }
  }
  return {{"resourceVersion", std::to_string(rv_)}, {"objects", std::move(objects)}};
}

void Store::restore(const json& snapshot) {
  if (!snapshot.is_object() || !snapshot.contains("objects") || !snapshot["objects"].is_array() ||
      !snapshot.contains("resourceVersion") || !snapshot["resourceVersion"].is_string()) {
    throw std::invalid_argument(
        "devapi snapshot: expected {\"resourceVersion\": \"<n>\", \"objects\": [...]}");
  }
  const std::uint64_t saved_rv = parse_rv(snapshot["resourceVersion"].get<std::string>());
  std::unordered_map<const ResourceInfo*, Bucket> buckets;
  for (const auto& entry : snapshot["objects"]) {
    if (!entry.is_object() || !entry.contains("resource") || !entry["resource"].is_string() ||
        !entry.contains("object") || !entry["object"].is_object()) {
      throw std::invalid_argument("devapi snapshot: an entry lacks \"resource\" or \"object\"");
    }
    const ResourceInfo& resource = resource_by_name(entry["resource"].get<std::string>());
    const json& object = entry["object"];
    const std::string name = detail::meta_string(object, "name");
    if (name.empty()) throw std::invalid_argument("devapi snapshot: an object has no name");
    const std::string key =
        detail::object_key(resource, detail::meta_string(object, "namespace"), name);
    buckets[&resource][key] = std::make_shared<const json>(object);
  }
  std::map<std::uint64_t, Watch> closing;
  {
    std::lock_guard lock(mutex_);
    buckets_ = std::move(buckets);
    rv_ = std::max(rv_, saved_rv);
    history_.clear();
    compacted_rv_ = rv_;
    closing.swap(watches_);
    for (auto& [id, watch] : closing) watch.sink->close();
  }
}

void Store::save(const std::string& path) const {
  const std::string text = wire::dump_json(snapshot());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("devapi: cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

void Store::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("devapi: cannot read " + path);
  const json snapshot = json::parse(in, nullptr, false);
  if (snapshot.is_discarded()) throw std::runtime_error("devapi: " + path + " is not JSON");
  try {
    restore(snapshot);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace edgehub::devapi

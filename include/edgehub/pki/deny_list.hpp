#pragma once
// Revoked edge identities: node names and client certificate serials. One list per replica,
// filled from a ConfigMap every replica reads (hub.revocation.configMap), consulted at
// connect (edge listener) and at join and renewal (certificate service). Thread-safe.

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

namespace edgehub::pki {

class DenyList {
 public:
  struct Entries {
    std::set<std::string> nodes;
    std::set<std::string> serials;  // net::normalize_serial() form
    bool operator==(const Entries&) const = default;
  };

  // The ConfigMap's `data`: `nodes` and `serials`, separated by whitespace or commas; lines
  // starting with '#' are comments. Entries that are not a node name or a hex serial are
  // skipped (and counted in `skipped`), never fatal: one typo must not un-revoke the rest.
  static Entries parse(const nlohmann::json& data, std::size_t* skipped = nullptr);

  void replace(Entries entries);
  bool denies_node(std::string_view node) const;
  bool denies_serial(std::string_view serial) const;  // "" is never denied
  // The reason for a refusal ("" when neither is denied).
  std::string reason(std::string_view node, std::string_view serial) const;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  Entries entries_;
};

}  // namespace edgehub::pki

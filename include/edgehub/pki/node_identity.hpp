#pragma once
// Which node identities the hub serves. A node's name travels in the certificate's subject as
// CN=system:node:<name> (what the Kubernetes Node authorizer reads), so a name must be a
// DNS-1123 subdomain, as Node names are, and short enough for the CN's 64 characters
// (RFC 5280 ub-common-name). An identity that passes the name check is then checked against
// the cluster (not a non-edge Node's name, not revoked) through an IdentityCheck, which the
// certificate service and the edge listener both call.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::pki {

inline constexpr std::string_view kNodeCommonNamePrefix = "system:node:";
inline constexpr std::size_t kMaxCommonNameLength = 64;
inline constexpr std::size_t kMaxNodeNameLength =
    kMaxCommonNameLength - kNodeCommonNamePrefix.size();  // 52

// Why `name` cannot name a node ("" when it can): a DNS-1123 subdomain of at most 52
// characters, each label 1–63 characters of [a-z0-9-] starting and ending alphanumeric.
std::string node_name_problem(std::string_view name);
inline bool valid_node_name(std::string_view name) { return node_name_problem(name).empty(); }

// A refused identity: the HTTP status to answer (403 not allowed, 503 cannot tell now), a
// fixed label for counters, and the reason for the log line and the answer's body.
struct IdentityRefusal {
  unsigned status = 403;
  std::string label;  // "revoked", "not_edge_node", "unverifiable"
  std::string reason;
};
using IdentityVerdict = std::optional<IdentityRefusal>;  // nullopt: allowed
using IdentityDone = std::function<void(IdentityVerdict)>;
// May `node`, presenting a certificate with serial `serial` ("" when none, e.g. a join
// token), be served? `done` may be called on any thread.
using IdentityCheck =
    std::function<void(const std::string& node, const std::string& serial, IdentityDone done)>;

}  // namespace edgehub::pki

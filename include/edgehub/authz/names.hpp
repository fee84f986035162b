#pragma once
// Object names as the API server accepts them (apimachinery's validation). Every namespace and
// name an edge sends is checked with these before it reaches a URL or a request body: what is
// not a valid name cannot name anything, and cannot smuggle `?`, `/`, `%` or `..` into a path.

#include <cstddef>
#include <string>
#include <string_view>

namespace edgehub::authz {

// RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters (namespaces).
bool is_dns1123_label(std::string_view text);
// RFC 1123 subdomain: labels joined by dots, at most 253 characters (pods, nodes, leases,
// configmaps, secrets, service accounts, events, devices).
bool is_dns1123_subdomain(std::string_view text);

// An edge-chosen string fit for a log line or an error message: printable ASCII only (the
// result is valid UTF-8 whatever the input), at most `max` characters.
std::string printable(std::string_view text, std::size_t max = 64);

}  // namespace edgehub::authz

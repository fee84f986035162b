#pragma once

#include <string>
#include <string_view>

namespace edgehub::kube {

// A resource type as the API addresses it: group/version/plural, and whether it lives in a
// namespace. The core group is the empty string (served under /api/v1).
struct Resource {
  std::string group;
  std::string version;
  std::string plural;
  bool namespaced = true;

  // "/api/v1/namespaces/<ns>/pods/<name>/<subresource>"; empty namespace on a namespaced
  // resource means all namespaces (list/watch), empty name means the collection. Each of
  // ns, name and subresource is one percent-encoded segment (path_segment).
  std::string path(std::string_view ns = {}, std::string_view name = {},
                   std::string_view subresource = {}) const;
};

namespace resources {
Resource pods();
Resource nodes();
Resource configmaps();
Resource secrets();
Resource namespaces();
Resource serviceaccounts();
Resource events();
Resource leases();        // coordination.k8s.io/v1
Resource devices();       // devices.kubeedge.io/v1beta1
Resource devicemodels();  // devices.kubeedge.io/v1beta1
Resource nodesyncs();     // edgehub.io/v1alpha1, cluster-scoped
}  // namespace resources

// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
std::string url_encode(std::string_view value);
// One path segment: url_encode, and `.`/`..` encoded so they cannot walk the path.
std::string path_segment(std::string_view segment);

}  // namespace edgehub::kube

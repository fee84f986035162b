#include <edgehub/kube/resource.hpp>

namespace edgehub::kube {

// Namespaces, names and subresources are percent-encoded, so that `?`, `#` or `%` in one
// cannot start a query or change another segment. The API server decodes the whole path
// before splitting it, so an encoded `/` is still a `/` there: callers must validate names
// (authz::is_dns1123_subdomain) before; this is the second wall.
std::string Resource::path(std::string_view ns, std::string_view name,
                           std::string_view subresource) const {
  std::string out = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) {
    out += "/namespaces/";
    out += path_segment(ns);
  }
  out += '/';
  out += plural;
  if (!name.empty()) {
    out += '/';
    out += path_segment(name);
    if (!subresource.empty()) {
      out += '/';
      out += path_segment(subresource);
    }
  }
  return out;
}

std::string path_segment(std::string_view segment) {
  // `.` and `..` are unreserved characters but name the directory and its parent.
  if (segment == "." || segment == "..") return segment == "." ? "%2E" : "%2E%2E";
  return url_encode(segment);
}

namespace resources {
Resource pods() { return {"", "v1", "pods", true}; }
Resource nodes() { return {"", "v1", "nodes", false}; }
Resource configmaps() { return {"", "v1", "configmaps", true}; }
Resource secrets() { return {"", "v1", "secrets", true}; }
Resource namespaces() { return {"", "v1", "namespaces", false}; }
Resource serviceaccounts() { return {"", "v1", "serviceaccounts", true}; }
Resource events() { return {"", "v1", "events", true}; }
Resource leases() { return {"coordination.k8s.io", "v1", "leases", true}; }
Resource devices() { return {"devices.kubeedge.io", "v1beta1", "devices", true}; }
Resource devicemodels() { return {"devices.kubeedge.io", "v1beta1", "devicemodels", true}; }
Resource nodesyncs() { return {"edgehub.io", "v1alpha1", "nodesyncs", false}; }
}  // namespace resources

std::string url_encode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace edgehub::kube

#include <edgehub/pki/node_identity.hpp>

namespace edgehub::pki {

namespace {

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::string node_name_problem(std::string_view name) {
  if (name.empty()) return "the node name is empty";
  if (name.size() > kMaxNodeNameLength) {
    return "the node name is longer than " + std::to_string(kMaxNodeNameLength) +
           " characters (CN=system:node:<name> must fit in 64)";
  }
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return "the node name is not a DNS-1123 subdomain";
      label = 0;
      continue;
    }
    if (!lower_alnum(c) && c != '-') {
      return "the node name is not a DNS-1123 subdomain (lower-case letters, digits, '-', '.')";
    }
    if (label == 0 && c == '-') return "the node name is not a DNS-1123 subdomain";
    ++label;
  }
  if (label == 0 || name.back() == '-') return "the node name is not a DNS-1123 subdomain";
  return {};
}

}  // namespace edgehub::pki

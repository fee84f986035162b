#include <edgehub/authz/names.hpp>

namespace edgehub::authz {

namespace {

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One label without the length limit of a namespace (a subdomain's parts may be longer).
bool label_chars(std::string_view text) {
  if (text.empty() || !alnum(text.front()) || !alnum(text.back())) return false;
  for (char c : text) {
    if (!alnum(c) && c != '-') return false;
  }
  return true;
}

}  // namespace

bool is_dns1123_label(std::string_view text) { return text.size() <= 63 && label_chars(text); }

bool is_dns1123_subdomain(std::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const auto dot = text.find('.', start);
    if (!label_chars(text.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string printable(std::string_view text, std::size_t max) {
  std::string out;
  for (char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace edgehub::authz

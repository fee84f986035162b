#include <edgehub/net/x509_mint.hpp>
#include <edgehub/pki/deny_list.hpp>
#include <edgehub/pki/node_identity.hpp>

namespace edgehub::pki {

namespace {

// Calls `take` for each word of `text` (whitespace or commas; '#' comments to the line end).
template <class Take>
void each_word(std::string_view text, Take take) {
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '#') {
      const auto eol = text.find('\n', i);
      i = eol == std::string_view::npos ? text.size() : eol + 1;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
      ++i;
      continue;
    }
    const auto end = text.find_first_of(" \t\r\n,#", i);
    const auto stop = end == std::string_view::npos ? text.size() : end;
    take(text.substr(i, stop - i));
    i = stop;
  }
}

std::string_view string_field(const nlohmann::json& data, const char* key) {
  if (!data.is_object()) return {};
  const auto it = data.find(key);
  if (it == data.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

}  // namespace

DenyList::Entries DenyList::parse(const nlohmann::json& data, std::size_t* skipped) {
  Entries out;
  std::size_t bad = 0;
  each_word(string_field(data, "nodes"), [&](std::string_view word) {
    if (valid_node_name(word)) {
      out.nodes.emplace(word);
    } else {
      ++bad;
    }
  });
  each_word(string_field(data, "serials"), [&](std::string_view word) {
    auto serial = net::normalize_serial(word);
    if (serial.empty()) {
      ++bad;
    } else {
      out.serials.insert(std::move(serial));
    }
  });
  if (skipped != nullptr) *skipped = bad;
  return out;
}

void DenyList::replace(Entries entries) {
  std::lock_guard lock(mutex_);
  entries_ = std::move(entries);
}

bool DenyList::denies_node(std::string_view node) const {
  std::lock_guard lock(mutex_);
  return entries_.nodes.find(std::string(node)) != entries_.nodes.end();
}

bool DenyList::denies_serial(std::string_view serial) const {
  if (serial.empty()) return false;
  std::lock_guard lock(mutex_);
  return entries_.serials.find(net::normalize_serial(serial)) != entries_.serials.end();
}

std::string DenyList::reason(std::string_view node, std::string_view serial) const {
  if (denies_node(node)) return "node " + std::string(node) + " is revoked";
  if (denies_serial(serial)) return "certificate serial " + std::string(serial) + " is revoked";
  return {};
}

std::size_t DenyList::size() const {
  std::lock_guard lock(mutex_);
  return entries_.nodes.size() + entries_.serials.size();
}

}  // namespace edgehub::pki

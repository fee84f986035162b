#pragma once

// A small forward-only JSON scanner: it finds member values and skips the rest without
// building a DOM, so an event envelope costs one pass over the text. It checks structure
// (quotes, bracket nesting) but is lenient about commas and numbers inside skipped values;
// a full parse (Object::json) remains the strict check.

#include <nlohmann/json.hpp>

#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace edgehub::kube::scan {

inline const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  return p;
}

// p at the opening quote; returns one past the closing quote, or nullptr. Most of an API
// object's bytes are inside strings, so this is the hot loop: memchr finds the next quote and
// an odd run of backslashes before it means it was escaped.
inline const char* skip_string(const char* p, const char* end) {
  const char* start = ++p;
  while (p < end) {
    const auto* q = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!q) return nullptr;
    const char* b = q;
    while (b > start && b[-1] == '\\') --b;
    if (((q - b) & 1) == 0) return q + 1;
    p = q + 1;
  }
  return nullptr;
}

// p at the first character of a value; returns one past its end, or nullptr.
inline const char* skip_value(const char* p, const char* end) {
  if (p >= end) return nullptr;
  char c = *p;
  if (c == '"') return skip_string(p, end);
  if (c == '{' || c == '[') {
    // Nesting tracked as a bit stack: 1 = object, 0 = array (depth capped at 256).
    unsigned char kinds[32] = {};
    int depth = 0;
    while (p < end) {
      c = *p;
      if (c == '"') {
        p = skip_string(p, end);
        if (!p) return nullptr;
        continue;
      }
      if (c == '{' || c == '[') {
        if (depth >= 256) return nullptr;
        if (c == '{') {
          kinds[depth >> 3] |= static_cast<unsigned char>(1u << (depth & 7));
        } else {
          kinds[depth >> 3] &= static_cast<unsigned char>(~(1u << (depth & 7)));
        }
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return nullptr;
        --depth;
        bool is_obj = kinds[depth >> 3] & (1u << (depth & 7));
        if (is_obj != (c == '}')) return nullptr;
        if (depth == 0) return p + 1;
      }
      ++p;
    }
    return nullptr;
  }
  const char* start = p;
  while (p < end) {
    c = *p;
    bool lit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
               c == '.' || c == 'E';
    if (!lit) break;
    ++p;
  }
  return p == start ? nullptr : p;
}

// Calls f(key_raw, value_text) for each member of the object `text` (which must be exactly one
// object, surrounding whitespace allowed). f returns false to stop early. Returns false when
// the text is not a well-formed object.
template <class F>
bool for_each_member(std::string_view text, F&& f) {
  const char* p = text.data();
  const char* end = p + text.size();
  p = skip_ws(p, end);
  if (p >= end || *p != '{') return false;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') return skip_ws(p + 1, end) == end;
  while (p < end) {
    if (*p != '"') return false;
    const char* key_end = skip_string(p, end);
    if (!key_end) return false;
    std::string_view key(p + 1, static_cast<std::size_t>(key_end - p - 2));
    p = skip_ws(key_end, end);
    if (p >= end || *p != ':') return false;
    p = skip_ws(p + 1, end);
    const char* v_end = skip_value(p, end);
    if (!v_end) return false;
    if (!f(key, std::string_view(p, static_cast<std::size_t>(v_end - p)))) return true;
    p = skip_ws(v_end, end);
    if (p >= end) return false;
    if (*p == '}') return skip_ws(p + 1, end) == end;
    if (*p != ',') return false;
    p = skip_ws(p + 1, end);
  }
  return false;
}

// Calls f(element_text) for each element of the array `text`.
template <class F>
bool for_each_element(std::string_view text, F&& f) {
  const char* p = text.data();
  const char* end = p + text.size();
  p = skip_ws(p, end);
  if (p >= end || *p != '[') return false;
  p = skip_ws(p + 1, end);
  if (p < end && *p == ']') return skip_ws(p + 1, end) == end;
  while (p < end) {
    const char* v_end = skip_value(p, end);
    if (!v_end) return false;
    if (!f(std::string_view(p, static_cast<std::size_t>(v_end - p)))) return false;
    p = skip_ws(v_end, end);
    if (p >= end) return false;
    if (*p == ']') return skip_ws(p + 1, end) == end;
    if (*p != ',') return false;
    p = skip_ws(p + 1, end);
  }
  return false;
}

// The value of a JSON string token (quotes included in `token`); nullopt if not a string.
inline std::optional<std::string> string_value(std::string_view token) {
  if (token.size() < 2 || token.front() != '"') return std::nullopt;
  std::string_view inner = token.substr(1, token.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return std::string(inner);
  auto j = nlohmann::json::parse(token.begin(), token.end(), nullptr, false);
  if (!j.is_string()) return std::nullopt;
  return j.get<std::string>();
}

inline bool is_null(std::string_view token) { return token == "null"; }

}  // namespace edgehub::kube::scan

#pragma once
// JSON from outside, parsed and serialised without throwing or recursing without bound.
// Nesting: nlohmann's parser is iterative, but copying,
// comparing and dumping a tree recurse once per level: ~100,000 nested arrays in an edge's
// content string overflow a thread's stack. Every nlohmann parse of input a peer chose goes
// through parse_json_bounded (or checks json_nesting_within first).

#include <nlohmann/json.hpp>
#include <string_view>

namespace edgehub::wire {

// As the message decoder's DecodeLimits::max_depth: edge content is never deeper.
inline constexpr int kMaxEdgeJsonDepth = 64;
// Objects from or for the Kubernetes API; Kubernetes objects stay far below (its own JSON
// decoder refuses 10,000).
inline constexpr int kMaxApiJsonDepth = 512;

// Whether no array or object in `text` is nested deeper than `max_depth` levels (brackets
// inside strings do not count). Linear, no allocation; says nothing about validity.
inline bool json_nesting_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// Parses without exceptions: a syntax error or nesting deeper than `max_depth` gives a
// discarded value (is_discarded()).
inline nlohmann::json parse_json_bounded(std::string_view text, int max_depth) {
  if (!json_nesting_within(text, max_depth)) {
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  return nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

// dump() throws on a string that is not UTF-8; strings from a URL, a header or a file may
// not be. Invalid bytes become U+FFFD instead.
inline std::string dump_json(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edgehub::wire

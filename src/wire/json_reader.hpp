#pragma once
// A small validating JSON reader used by the message decoder. It reads the envelope fields
// it needs and skips (while validating) everything else, recording the raw text of
// `content` instead of building a DOM: a 4 KB pod is scanned, not materialised.

#include <cstdint>
#include <string>
#include <string_view>

namespace edgehub::wire::detail {

class JsonReader {
 public:
  JsonReader(std::string_view text, int max_depth)
      : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()),
        max_depth_(max_depth) {}

  void skip_ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool at_end() const { return p_ == end_; }
  char peek() const { return p_ == end_ ? '\0' : *p_; }
  bool consume(char c) {
    skip_ws();
    if (p_ != end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  const char* position() const { return p_; }
  std::size_t offset() const { return static_cast<std::size_t>(p_ - begin_); }

  // Reads a string (p_ at the opening quote), unescaping into `out` when given.
  bool read_string(std::string* out);
  // Reads a JSON integer that fits int64 (no fraction, no exponent).
  bool read_int64(std::int64_t& out);
  bool read_literal(std::string_view word);
  // Skips one value of any type at nesting `depth`, validating it.
  bool skip_value(int depth);

  // Why the last call failed; empty if none did.
  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }
  bool fail(std::string reason);

 private:
  bool skip_number();
  bool append_utf8(std::uint32_t cp, std::string* out);
  bool read_hex4(std::uint32_t& cp);

  const char* begin_;
  const char* p_;
  const char* end_;
  int max_depth_;
  bool too_deep_ = false;
  std::string error_;
};

// Appends `text` as a JSON string literal, escaping as Go's encoding/json does.
void append_json_string(std::string& out, std::string_view text);

}  // namespace edgehub::wire::detail

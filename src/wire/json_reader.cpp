#include "json_reader.hpp"

#include <cstring>

namespace edgehub::wire::detail {

namespace {

// Length of a valid UTF-8 sequence starting at p (p[0] >= 0x80), or 0 if invalid.
std::size_t utf8_sequence_length(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  std::size_t n = 0;
  std::uint32_t min = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2, min = 0x80, cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, min = 0x800, cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, cp = c & 0x07;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

bool JsonReader::fail(std::string reason) {
  if (error_.empty()) error_ = std::move(reason);
  return false;
}

bool JsonReader::read_hex4(std::uint32_t& cp) {
  if (end_ - p_ < 4) return fail("truncated \\u escape");
  cp = 0;
  for (int i = 0; i < 4; ++i) {
    const char c = *p_++;
    cp <<= 4;
    if (c >= '0' && c <= '9') {
      cp |= static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      cp |= static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      cp |= static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return fail("bad hex digit in \\u escape");
    }
  }
  return true;
}

bool JsonReader::append_utf8(std::uint32_t cp, std::string* out) {
  if (out == nullptr) return true;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return true;
}

bool JsonReader::read_string(std::string* out) {
  if (p_ == end_ || *p_ != '"') return fail("expected a string");
  ++p_;
  if (out != nullptr) out->clear();
  for (;;) {
    const char* run = p_;
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++p_;
    }
    if (out != nullptr) out->append(run, p_);
    if (p_ == end_) return fail("unterminated string");
    const auto c = static_cast<unsigned char>(*p_);
    if (c == '"') {
      ++p_;
      return true;
    }
    if (c < 0x20) return fail("control character in string");
    if (c >= 0x80) {
      const auto n = utf8_sequence_length(reinterpret_cast<const unsigned char*>(p_),
                                          reinterpret_cast<const unsigned char*>(end_));
      if (n == 0) return fail("invalid UTF-8 in string");
      if (out != nullptr) out->append(p_, n);
      p_ += n;
      continue;
    }
    // Backslash escape.
    ++p_;
    if (p_ == end_) return fail("unterminated escape");
    const char e = *p_++;
    char plain = 0;
    switch (e) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': {
        std::uint32_t cp = 0;
        if (!read_hex4(cp)) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          std::uint32_t low = 0;
          if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("lone surrogate");
          p_ += 2;
          if (!read_hex4(low)) return false;
          if (low < 0xDC00 || low > 0xDFFF) return fail("bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail("lone surrogate");
        }
        append_utf8(cp, out);
        continue;
      }
      default:
        return fail("bad escape in string");
    }
    if (out != nullptr) out->push_back(plain);
  }
}

bool JsonReader::skip_number() {
  const auto digit = [this] { return p_ != end_ && *p_ >= '0' && *p_ <= '9'; };
  if (p_ != end_ && *p_ == '-') ++p_;
  if (!digit()) return fail("bad number");
  if (*p_ == '0') {
    ++p_;
  } else {
    while (digit()) ++p_;
  }
  if (p_ != end_ && *p_ == '.') {
    ++p_;
    if (!digit()) return fail("bad number");
    while (digit()) ++p_;
  }
  if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (!digit()) return fail("bad number");
    while (digit()) ++p_;
  }
  return true;
}

bool JsonReader::read_int64(std::int64_t& out) {
  skip_ws();
  const char* start = p_;
  if (!skip_number()) return false;
  const std::string_view text(start, static_cast<std::size_t>(p_ - start));
  if (text.find_first_of(".eE") != std::string_view::npos) return fail("not an integer");
  bool negative = text[0] == '-';
  std::uint64_t value = 0;
  for (char c : text.substr(negative ? 1 : 0)) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - d) / 10) return fail("integer out of range");
    value = value * 10 + d;
  }
  const std::uint64_t limit = negative ? (static_cast<std::uint64_t>(INT64_MAX) + 1) : INT64_MAX;
  if (value > limit) return fail("integer out of range");
  out = negative ? static_cast<std::int64_t>(0 - value) : static_cast<std::int64_t>(value);
  return true;
}

bool JsonReader::read_literal(std::string_view word) {
  if (static_cast<std::size_t>(end_ - p_) < word.size() ||
      std::memcmp(p_, word.data(), word.size()) != 0) {
    return fail("bad literal");
  }
  p_ += word.size();
  return true;
}

bool JsonReader::skip_value(int depth) {
  skip_ws();
  if (p_ == end_) return fail("unexpected end of input");
  switch (*p_) {
    case '"':
      return read_string(nullptr);
    case 't':
      return read_literal("true");
    case 'f':
      return read_literal("false");
    case 'n':
      return read_literal("null");
    case '{':
    case '[': {
      if (depth + 1 > max_depth_) {
        too_deep_ = true;
        return fail("nesting deeper than " + std::to_string(max_depth_));
      }
      const bool object = *p_ == '{';
      const char close = object ? '}' : ']';
      ++p_;
      if (consume(close)) return true;
      for (;;) {
        if (object) {
          skip_ws();
          if (!read_string(nullptr)) return false;
          if (!consume(':')) return fail("expected ':'");
        }
        if (!skip_value(depth + 1)) return false;
        if (consume(',')) continue;
        if (consume(close)) return true;
        return fail(object ? "expected ',' or '}'" : "expected ',' or ']'");
      }
    }
    default:
      return skip_number();
  }
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const char* escape = nullptr;
    bool unicode = false;
    switch (c) {
      case '"': escape = "\\\""; break;
      case '\\': escape = "\\\\"; break;
      case '\n': escape = "\\n"; break;
      case '\r': escape = "\\r"; break;
      case '\t': escape = "\\t"; break;
      case '<': case '>': case '&': unicode = true; break;  // Go's HTML-safe escaping
      default: unicode = c < 0x20; break;
    }
    // U+2028 and U+2029 are escaped by Go too.
    const bool line_sep = c == 0xE2 && i + 2 < text.size() &&
                          static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                          (static_cast<unsigned char>(text[i + 2]) & 0xFE) == 0xA8;
    if (escape == nullptr && !unicode && !line_sep) continue;
    out.append(text.data() + run, i - run);
    if (escape != nullptr) {
      out.append(escape);
    } else if (line_sep) {
      out.append(static_cast<unsigned char>(text[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
      i += 2;
    } else {
      out.append("\\u00");
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

}  // namespace edgehub::wire::detail

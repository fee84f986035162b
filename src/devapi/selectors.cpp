// Label selector grammar and messages follow k8s.io/apimachinery/pkg/labels/selector.go so that
// clients see the same 400 errors as from a real server.
#include <algorithm>
#include <edgehub/devapi/api_error.hpp>
#include <edgehub/devapi/resources.hpp>
#include <edgehub/devapi/selectors.hpp>
#include <edgehub/wire/json_safe.hpp>
#include <set>

namespace edgehub::devapi {

namespace {

enum class Tok {
  kEnd,
  kIdent,
  kOpen,
  kClose,
  kComma,
  kNot,
  kEq,
  kDoubleEq,
  kNotEq,
  kIn,
  kNotIn,
  kGt,
  kLt
};

struct Token {
  Tok kind;
  std::string text;
};

bool is_special(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::vector<Token> lex(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    if (is_special(c)) {
      std::string op(1, c);
      if (i + 1 < s.size() && s[i + 1] == '=' && (c == '=' || c == '!')) op += '=';
      i += op.size();
      Tok kind = Tok::kEq;
      if (op == "(")
        kind = Tok::kOpen;
      else if (op == ")")
        kind = Tok::kClose;
      else if (op == ",")
        kind = Tok::kComma;
      else if (op == "!")
        kind = Tok::kNot;
      else if (op == "==")
        kind = Tok::kDoubleEq;
      else if (op == "!=")
        kind = Tok::kNotEq;
      else if (op == ">")
        kind = Tok::kGt;
      else if (op == "<")
        kind = Tok::kLt;
      out.push_back({kind, op});
      continue;
    }
    std::size_t j = i;
    while (j < s.size() && !is_space(s[j]) && !is_special(s[j])) ++j;
    std::string word(s.substr(i, j - i));
    Tok kind = word == "in" ? Tok::kIn : word == "notin" ? Tok::kNotIn : Tok::kIdent;
    out.push_back({kind, word});
    i = j;
  }
  out.push_back({Tok::kEnd, ""});
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : tokens_(lex(text)) {}

  std::vector<LabelSelector::Requirement> parse() {
    std::vector<LabelSelector::Requirement> out;
    for (;;) {
      const Token& tok = peek();
      if (tok.kind == Tok::kEnd && out.empty()) return out;
      if (tok.kind != Tok::kIdent && tok.kind != Tok::kNot) {
        fail("found '" + tok.text + "', expected: !, identifier, or 'end of string'", false);
      }
      out.push_back(requirement());
      const Token& next = consume();
      if (next.kind == Tok::kEnd) return out;
      if (next.kind != Tok::kComma) {
        fail("found '" + next.text + "', expected: ',' or 'end of string'", false);
      }
      const Token& after = peek();
      if (after.kind != Tok::kIdent && after.kind != Tok::kNot) {
        fail("found '" + after.text + "', expected: identifier after ','", false);
      }
    }
  }

 private:
  [[noreturn]] static void fail(const std::string& message, bool requirement = true) {
    throw ApiError::bad_request(requirement ? "unable to parse requirement: " + message : message);
  }
  const Token& peek() const { return tokens_[pos_]; }
  const Token& consume() {
    const Token& tok = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return tok;
  }
  // Inside values the keywords are plain identifiers.
  static bool is_value(const Token& tok) {
    return tok.kind == Tok::kIdent || tok.kind == Tok::kIn || tok.kind == Tok::kNotIn;
  }

  LabelSelector::Requirement requirement() {
    LabelSelector::Requirement req;
    if (peek().kind == Tok::kNot) {
      consume();
      const Token& key = consume();
      if (key.kind != Tok::kIdent) fail("found '" + key.text + "', expected: identifier");
      req.key = key.text;
      req.op = LabelSelector::Op::kDoesNotExist;
      return req;
    }
    req.key = consume().text;
    const Token& op = peek();
    if (op.kind == Tok::kEnd || op.kind == Tok::kComma) {
      req.op = LabelSelector::Op::kExists;
      return req;
    }
    consume();
    switch (op.kind) {
      case Tok::kIn:
        req.op = LabelSelector::Op::kIn;
        break;
      case Tok::kNotIn:
        req.op = LabelSelector::Op::kNotIn;
        break;
      case Tok::kEq:
      case Tok::kDoubleEq:
        req.op = LabelSelector::Op::kEquals;
        break;
      case Tok::kNotEq:
        req.op = LabelSelector::Op::kNotEquals;
        break;
      case Tok::kGt:
        req.op = LabelSelector::Op::kGreaterThan;
        break;
      case Tok::kLt:
        req.op = LabelSelector::Op::kLessThan;
        break;
      default:
        fail("found '" + op.text + "', expected: in, notin, =, ==, !=, gt, lt");
    }
    if (req.op == LabelSelector::Op::kIn || req.op == LabelSelector::Op::kNotIn) {
      req.values = value_set();
    } else {
      const Token& value = peek();
      if (value.kind == Tok::kEnd || value.kind == Tok::kComma) {
        req.values = {""};
      } else if (is_value(value)) {
        req.values = {consume().text};
      } else {
        fail("found '" + value.text + "', expected: identifier");
      }
      if (req.op == LabelSelector::Op::kGreaterThan || req.op == LabelSelector::Op::kLessThan) {
        try {
          (void)std::stoll(req.values[0]);
        } catch (const std::exception&) {
          fail("for 'Gt', 'Lt' operators, the value must be an integer");
        }
      }
    }
    return req;
  }

  std::vector<std::string> value_set() {
    const Token& open = consume();
    if (open.kind != Tok::kOpen) fail("found '" + open.text + "' expected: '('");
    std::vector<std::string> values;
    const Token& first = peek();
    if (first.kind == Tok::kClose) {
      consume();
      return {""};
    }
    if (!is_value(first) && first.kind != Tok::kComma) {
      fail("found '" + first.text + "', expected: ',', ')' or identifier");
    }
    for (;;) {
      const Token& tok = consume();
      if (is_value(tok)) {
        values.push_back(tok.text);
        const Token& next = peek();
        if (next.kind == Tok::kComma) {
          consume();
          if (peek().kind == Tok::kClose) values.emplace_back("");
          continue;
        }
        if (next.kind == Tok::kClose) {
          consume();
          return values;
        }
        fail("found '" + next.text + "', expected: ',' or ')'");
      } else if (tok.kind == Tok::kComma) {
        values.emplace_back("");
        if (peek().kind == Tok::kClose) {
          consume();
          return values;
        }
      } else {
        fail("found '" + tok.text + "', expected: ',', or identifier");
      }
    }
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

std::string label_value(const nlohmann::json& labels, const std::string& key, bool* present) {
  *present = false;
  if (!labels.is_object()) return {};
  auto it = labels.find(key);
  if (it == labels.end() || !it->is_string()) return {};
  *present = true;
  return it->get<std::string>();
}

std::vector<std::string> supported_fields(const ResourceInfo& resource) {
  std::vector<std::string> fields = {"metadata.name"};
  if (resource.namespaced) fields.emplace_back("metadata.namespace");
  if (!resource.group.empty()) return fields;
  if (resource.resource == "pods") {
    fields.insert(fields.end(), {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                 "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                                 "status.podIP", "status.podIPs", "status.nominatedNodeName"});
  } else if (resource.resource == "nodes") {
    fields.emplace_back("spec.unschedulable");
  } else if (resource.resource == "secrets") {
    fields.emplace_back("type");
  } else if (resource.resource == "namespaces") {
    fields.emplace_back("status.phase");
  } else if (resource.resource == "events") {
    fields.insert(
        fields.end(),
        {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"});
  }
  return fields;
}

std::string field_value(const nlohmann::json& object, const std::string& field) {
  std::string path = field == "source" ? "source.component" : field;
  if (path == "status.podIPs") path = "status.podIP";
  const nlohmann::json* node = &object;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!node->is_object()) return {};
    auto it = node->find(part);
    if (it == node->end()) return {};
    node = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (node->is_string()) return node->get<std::string>();
  if (node->is_boolean()) return node->get<bool>() ? "true" : "false";
  if (node->is_null()) return {};
  return wire::dump_json(*node);
}

}  // namespace

LabelSelector LabelSelector::parse(std::string_view text) {
  LabelSelector selector;
  selector.requirements_ = Parser(text).parse();
  return selector;
}

bool LabelSelector::matches(const nlohmann::json& labels) const {
  for (const auto& req : requirements_) {
    bool present = false;
    const std::string value = label_value(labels, req.key, &present);
    const bool in_values =
        std::find(req.values.begin(), req.values.end(), value) != req.values.end();
    switch (req.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!present || !in_values) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (present && in_values) return false;
        break;
      case Op::kExists:
        if (!present) return false;
        break;
      case Op::kDoesNotExist:
        if (present) return false;
        break;
      case Op::kGreaterThan:
      case Op::kLessThan: {
        if (!present) return false;
        long long have = 0;
        try {
          have = std::stoll(value);
        } catch (const std::exception&) {
          return false;
        }
        const long long want = std::stoll(req.values[0]);
        if (req.op == Op::kGreaterThan ? !(have > want) : !(have < want)) return false;
        break;
      }
    }
  }
  return true;
}

FieldSelector FieldSelector::parse(std::string_view text, const ResourceInfo& resource) {
  FieldSelector selector;
  const auto fields = supported_fields(resource);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string term(text.substr(start, end - start));
    start = end + 1;
    if (term.empty()) continue;
    Requirement req;
    std::size_t op_pos = std::string::npos;
    std::size_t op_len = 0;
    for (std::size_t i = 0; i < term.size(); ++i) {
      if (term.compare(i, 2, "!=") == 0 || term.compare(i, 2, "==") == 0) {
        op_pos = i;
        op_len = 2;
        req.equals = term[i] == '=';
        break;
      }
      if (term[i] == '=') {
        op_pos = i;
        op_len = 1;
        req.equals = true;
        break;
      }
    }
    if (op_pos == std::string::npos) {
      throw ApiError::bad_request("invalid selector: '" + std::string(text) +
                                  "'; can't understand '" + term + "'");
    }
    req.field = term.substr(0, op_pos);
    req.value = term.substr(op_pos + op_len);
    if (std::find(fields.begin(), fields.end(), req.field) == fields.end()) {
      throw ApiError::bad_request("field label not supported: " + req.field);
    }
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

bool FieldSelector::matches(const nlohmann::json& object) const {
  for (const auto& req : requirements_) {
    const bool equal = field_value(object, req.field) == req.value;
    if (equal != req.equals) return false;
  }
  return true;
}

}  // namespace edgehub::devapi

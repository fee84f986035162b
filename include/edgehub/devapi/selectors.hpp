// Label and field selectors with the syntax and error messages of Kubernetes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace edgehub::devapi {

struct ResourceInfo;

class LabelSelector {
 public:
  enum class Op {
    kEquals,
    kNotEquals,
    kIn,
    kNotIn,
    kExists,
    kDoesNotExist,
    kGreaterThan,
    kLessThan
  };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };

  LabelSelector() = default;
  // Throws ApiError 400 ("unable to parse requirement: ...") on bad syntax.
  static LabelSelector parse(std::string_view text);

  bool empty() const { return requirements_.empty(); }
  // labels: the object's metadata.labels (object or null).
  bool matches(const nlohmann::json& labels) const;

 private:
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;
    bool equals;  // false: !=
    std::string value;
  };

  FieldSelector() = default;
  // Throws ApiError 400 ("field label not supported: spec.foo") for a field the resource does
  // not index, and for bad syntax.
  static FieldSelector parse(std::string_view text, const ResourceInfo& resource);

  bool empty() const { return requirements_.empty(); }
  bool matches(const nlohmann::json& object) const;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace edgehub::devapi

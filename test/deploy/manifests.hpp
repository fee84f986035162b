#pragma once
// Helpers of the deploy tests: render deploy/ with the local kubectl, find objects in the
// result, check objects against a CRD's structural schema and requests against RBAC rules.

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"

namespace edgehub::test::deploy {

using test::find_program;
// Path under the source tree.
std::string source(const std::string& relative);
std::string read_text(const std::string& path);
// A new, empty directory of this test process (ends with '/'): tests run in parallel.
std::string make_temp_dir(const std::string& prefix);

// `kubectl kustomize <source dir>`, split into its documents. Throws with kubectl's error.
std::vector<YAML::Node> kustomize(const std::string& relative_dir);

// The first object of that kind (and name, unless empty). Throws when there is none.
YAML::Node find_object(const std::vector<YAML::Node>& objects, const std::string& kind,
                              const std::string& name = {});
std::vector<YAML::Node> all_of_kind(const std::vector<YAML::Node>& objects,
                                    const std::string& kind);

nlohmann::json to_json(const YAML::Node& node);

// Checks `value` against an openAPIV3Schema (types, properties, enums, date-time, required;
// unknown fields are errors unless x-kubernetes-preserve-unknown-fields). Returns the
// problems, each as "<path>: <what>".
std::vector<std::string> schema_errors(const nlohmann::json& schema, const nlohmann::json& value,
                                       const std::string& path = "");

// One API request as the devapi request log records it.
struct Request {
  std::string verb, group, resource, subresource, ns, name, user_agent;
  std::string describe() const;
};
std::vector<Request> read_request_log(const std::string& path);

// The RBAC rules granted to one ServiceAccount by the rendered (Cluster)Roles and bindings.
class Rbac {
 public:
  Rbac(const std::vector<YAML::Node>& objects, const std::string& sa_namespace,
       const std::string& sa_name);
  bool allows(const Request& request) const;
  std::size_t rule_count() const { return rules_.size(); }

 private:
  struct Rule {
    std::optional<std::string> ns;  // Role: only this namespace
    YAML::Node rule;
  };
  std::vector<Rule> rules_;
};

}  // namespace edgehub::test::deploy

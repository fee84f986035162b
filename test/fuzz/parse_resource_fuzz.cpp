// parse_resource alone: the route's resource string as the edge chose it.

#include <edgehub/wire/resource.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = edgehub::wire::parse_resource(text);
  if (!parsed) return 0;
  // An object resource formats back to a string that parses to the same parts.
  if (parsed->form == edgehub::wire::ResourceForm::object && !parsed->name.empty()) {
    auto again = edgehub::wire::parse_resource(
        edgehub::wire::format_resource(parsed->ns, parsed->type, parsed->name));
    if (!again || again->ns != parsed->ns || again->type != parsed->type ||
        again->name != parsed->name) {
      std::abort();
    }
  }
  return 0;
}

#include "protobuf.hpp"

#include <edgehub/devapi/api_error.hpp>
#include <optional>
#include <string>

#include "util.hpp"

namespace edgehub::devapi::detail {

using nlohmann::json;

namespace {

[[noreturn]] void malformed() {
  throw ApiError::bad_request("the object provided is unrecognized: malformed protobuf body");
}

struct Field {
  std::uint32_t number = 0;
  std::uint32_t wire = 0;
  std::uint64_t varint = 0;
  std::string_view bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  std::optional<Field> next() {
    if (pos_ >= data_.size()) return std::nullopt;
    Field field;
    const std::uint64_t key = varint();
    field.number = static_cast<std::uint32_t>(key >> 3);
    field.wire = static_cast<std::uint32_t>(key & 7);
    switch (field.wire) {
      case 0:
        field.varint = varint();
        break;
      case 1:
        skip(8);
        break;
      case 2: {
        const std::uint64_t size = varint();
        if (size > data_.size() - pos_) malformed();
        field.bytes = data_.substr(pos_, size);
        pos_ += size;
        break;
      }
      case 5:
        skip(4);
        break;
      default:
        malformed();
    }
    return field;
  }

 private:
  std::uint64_t varint() {
    std::uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) malformed();
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      value |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    malformed();
  }
  void skip(std::size_t n) {
    if (n > data_.size() - pos_) malformed();
    pos_ += n;
  }

  std::string_view data_;
  std::size_t pos_ = 0;
};

// map<string, string|bytes> entry: key = 1, value = 2.
void add_map_entry(json& map, std::string_view entry, bool base64_value) {
  Reader reader(entry);
  std::string key;
  std::string value;
  while (auto f = reader.next()) {
    if (f->number == 1 && f->wire == 2) key = f->bytes;
    if (f->number == 2 && f->wire == 2) value = f->bytes;
  }
  if (!map.is_object()) map = json::object();
  map[key] = base64_value ? base64_encode(value) : value;
}

json object_meta(std::string_view data) {
  json meta = json::object();
  Reader reader(data);
  while (auto f = reader.next()) {
    if (f->wire != 2) continue;
    switch (f->number) {
      case 1:
        meta["name"] = std::string(f->bytes);
        break;
      case 2:
        meta["generateName"] = std::string(f->bytes);
        break;
      case 3:
        meta["namespace"] = std::string(f->bytes);
        break;
      case 6:
        meta["resourceVersion"] = std::string(f->bytes);
        break;
      case 11:
        add_map_entry(meta["labels"], f->bytes, false);
        break;
      case 12:
        add_map_entry(meta["annotations"], f->bytes, false);
        break;
      case 14:
        meta["finalizers"].push_back(std::string(f->bytes));
        break;
      default:
        break;  // server-set or unsupported fields
    }
  }
  for (const char* key : {"name", "generateName", "namespace", "resourceVersion"}) {
    if (meta.contains(key) && meta[key].get<std::string>().empty()) meta.erase(key);
  }
  return meta;
}

json decode(std::string_view raw, const ResourceInfo& resource) {
  json object = {{"apiVersion", resource.api_version()}, {"kind", resource.kind}};
  Reader reader(raw);
  while (auto f = reader.next()) {
    if (f->number == 1 && f->wire == 2) {
      object["metadata"] = object_meta(f->bytes);
      continue;
    }
    if (resource.kind == "ConfigMap") {
      if (f->number == 2 && f->wire == 2) add_map_entry(object["data"], f->bytes, false);
      if (f->number == 3 && f->wire == 2) add_map_entry(object["binaryData"], f->bytes, true);
      if (f->number == 4 && f->wire == 0) object["immutable"] = f->varint != 0;
    } else if (resource.kind == "Secret") {
      if (f->number == 2 && f->wire == 2) add_map_entry(object["data"], f->bytes, true);
      if (f->number == 3 && f->wire == 2) object["type"] = std::string(f->bytes);
      if (f->number == 4 && f->wire == 2) add_map_entry(object["stringData"], f->bytes, false);
      if (f->number == 5 && f->wire == 0) object["immutable"] = f->varint != 0;
    } else if (resource.kind == "ServiceAccount") {
      if (f->number == 4 && f->wire == 0) object["automountServiceAccountToken"] = f->varint != 0;
    }
  }
  if (object.contains("stringData")) {  // the API server folds stringData into data
    for (const auto& [key, value] : object["stringData"].items()) {
      object["data"][key] = base64_encode(value.get<std::string>());
    }
    object.erase("stringData");
  }
  return object;
}

}  // namespace

json decode_protobuf_object(std::string_view body, const ResourceInfo& resource) {
  const bool supported =
      resource.group.empty() && (resource.kind == "Namespace" || resource.kind == "ConfigMap" ||
                                 resource.kind == "Secret" || resource.kind == "ServiceAccount");
  if (!supported) {
    throw ApiError(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types "
                   "include: application/json, application/yaml",
                   json::object());
  }
  constexpr std::string_view kMagic("k8s\0", 4);
  if (body.substr(0, 4) != kMagic) malformed();
  // runtime.Unknown: typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2.
  Reader envelope(body.substr(4));
  std::optional<std::string_view> raw;
  while (auto f = envelope.next()) {
    if (f->number == 2 && f->wire == 2) raw = f->bytes;
  }
  if (!raw) malformed();
  return decode(*raw, resource);
}

}  // namespace edgehub::devapi::detail

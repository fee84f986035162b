// Small helpers shared by the devapi sources.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace edgehub::devapi::detail {

// "2026-11-27T00:11:48Z" (seconds precision, UTC), optionally offset into the future.
std::string rfc3339_now(long long offset_seconds = 0);
// A random RFC 4122 version-4 UUID.
std::string new_uid();
// URL-safe base64 without padding (the encoding of continue tokens).
std::string base64url_encode(std::string_view data);
// Accepts standard or URL-safe alphabet, padded or not; nullopt on an invalid character.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view data);

}  // namespace edgehub::devapi::detail

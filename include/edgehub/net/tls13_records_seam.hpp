#pragma once
// TEST SEAM — for unit tests and the fuzz target only; production code never includes this.
//
// Tls13Records is otherwise only reached through take_over(SSL*), after a real handshake.
// The seam makes one from explicit traffic secrets (either end of the connection), seals
// records a well-behaved peer would never send (any inner content type, any padding), and
// changes how many records a new Tls13Records writes before its own KeyUpdate.

#include <cstddef>
#include <cstdint>
#include <edgehub/net/tls13_records.hpp>
#include <memory>
#include <vector>

namespace edgehub::net {

class Tls13RecordsSeam {
 public:
  enum class End { server, client };

  // The record layer of `end` of a connection with cipher suite `suite` (IANA id: 0x1301,
  // 0x1302, 0x1303) and the two application traffic secrets 0 (each of the suite's hash
  // length). Null for another suite or secrets of the wrong length.
  static std::unique_ptr<Tls13Records> from_secrets(std::uint16_t suite, End end,
                                                    const std::vector<unsigned char>& client_secret,
                                                    const std::vector<unsigned char>& server_secret);

  // A new record layer with r's keys and sequence numbers (nothing pending, not failed): a
  // fuzz target starts each input from one without deriving keys again.
  static std::unique_ptr<Tls13Records> copy_keys(const Tls13Records& r);

  // Seals the next record of r's write direction: `content`, inner type `type`, `padding`
  // zero bytes. Returns the record (header included); empty when r has output pending or
  // the record would not fit a record header's 16-bit length.
  static std::vector<unsigned char> seal(Tls13Records& r, std::uint8_t type,
                                         const unsigned char* content, std::size_t size,
                                         std::size_t padding = 0);
  // Moves r's write key to the next generation, as after sending a KeyUpdate.
  static bool update_write_key(Tls13Records& r);

  // Records written under one key before a Tls13Records created from now on sends its own
  // KeyUpdate (2^23 by default). Returns the previous value.
  static std::uint64_t set_rekey_after(std::uint64_t records);
};

}  // namespace edgehub::net

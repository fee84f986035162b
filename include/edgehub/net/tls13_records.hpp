#pragma once
// The record layer of an established TLS 1.3 connection (RFC 8446 §5), for a server that
// hands its connections over from OpenSSL once the handshake is done.
//
// Why: OpenSSL 3.0 keeps ~19 KiB per connection after the handshake (the 7.6 KB `SSL`, the
// session with the parsed client certificate, the handshake's key shares and transcript hash,
// two cipher contexts; bench/tls_session_memory), none of which an established TLS 1.3
// connection needs: only its two application traffic secrets, the keys and IVs derived from
// them and the record sequence numbers (~300 bytes here). The handshake, the certificate
// checks and the key schedule up to the traffic secrets stay OpenSSL's.
//
// What it does: application data both ways (records of at most 2^14 bytes, content type and
// zero padding per §5.4), the peer's KeyUpdate (§4.6.3: the read key moves on; when the
// peer asks, the write key moves on too and our KeyUpdate goes out before our next data),
// close_notify both ways, user_canceled as a closure alert (ignored: its close_notify follows,
// §6.1) and the peer's other alerts as errors; its own KeyUpdate every 2^23 records (§5.5:
// AES-GCM's limit is 2^24.5). What it refuses (the connection fails, with a
// fatal alert when it is the peer's doing): outer record types other than application_data,
// records over the size limits or too short to be sealed, records that fail
// authentication, alerts that are not exactly one alert (empty: unexpected_message, §5.1),
// handshake messages other than KeyUpdate, a KeyUpdate not alone at the end
// of its record or split across records, more than 32 records in a row without data, and a
// sequence number about to wrap. AEADs: TLS_AES_128_GCM_SHA256,
// TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256; the crypto is OpenSSL's (EVP AEAD,
// HKDF).
//
// Buffers that held plaintext are wiped before they are freed; so are a thread's cipher
// contexts when the connection that keyed them last is destroyed on that thread.
//
// Non-blocking on a socket's fd; the caller waits for readiness when told (Step).
// Not thread-safe: one read and one write at a time, from one thread (as TlsStream).

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace edgehub::net {

namespace detail {
// Outcome of one attempt of a non-blocking operation.
enum class Step { done, want_read, want_write, failed };
}  // namespace detail

// Makes every connection of `ctx` keep its TLS 1.3 application traffic secrets (captured
// from OpenSSL's key log; freed, wiped, with the SSL) for Tls13Records::take_over. Call
// before the context's first handshake.
void capture_traffic_secrets(SSL_CTX* ctx);

class Tls13RecordsSeam;  // tests only: tls13_records_seam.hpp

class Tls13Records {
 public:
  // Takes over `ssl`'s connection: a server side whose TLS 1.3 handshake is done, before any
  // application data, from a context with capture_traffic_secrets. Null, and `ssl` unchanged,
  // when the connection is not that (TLS 1.2, session tickets on, bytes OpenSSL already
  // holds, a shutdown begun), its cipher suite is not one of the three, or the keys cannot
  // be derived. The caller then frees the SSL.
  static std::unique_ptr<Tls13Records> take_over(SSL* ssl);
  ~Tls13Records();
  Tls13Records(const Tls13Records&) = delete;
  Tls13Records& operator=(const Tls13Records&) = delete;

  // Reads up to `size` bytes of application data into `data` (n > 0 on done). The peer's
  // close_notify ends reading with asio::error::eof; a TCP close without it with
  // stream_truncated_error(). Any other failure is final: every later call fails with it.
  detail::Step read(int fd, void* data, std::size_t size, std::size_t& n,
                    boost::system::error_code& ec);
  // Writes up to 2^14 bytes of `data` as one record; n: the bytes taken, set on done once
  // the whole record is on the socket (a retry after want_write must pass the same bytes).
  detail::Step write(int fd, const void* data, std::size_t size, std::size_t& n,
                     boost::system::error_code& ec);
  // Sends close_notify (once; later calls finish sending it).
  detail::Step close_notify(int fd, boost::system::error_code& ec);

 private:
  friend class Tls13RecordsSeam;
  // The AEAD of a TLS 1.3 cipher suite.
  struct Suite {
    const EVP_CIPHER* cipher;
    const EVP_MD* digest;
    std::size_t key_length;
  };
  static std::optional<Suite> suite(std::uint16_t id);  // by IANA id (0x1301, ...)

  struct Direction {
    std::array<unsigned char, EVP_MAX_MD_SIZE> secret{};
    std::array<unsigned char, 32> key{};
    std::array<unsigned char, 12> iv{};
    std::uint64_t sequence = 0;
  };
  Tls13Records(const Suite& suite, std::size_t secret_length);
  // From traffic secret 0 of each side (§7.1), both of the suite's hash length; sequence
  // numbers start at 0. The server reads with the client's secret (a client end, for tests,
  // the other way round). Null when the secrets do not fit the suite or no keys come of them.
  static std::unique_ptr<Tls13Records> create(const Suite& suite,
                                              const std::vector<unsigned char>& client_secret,
                                              const std::vector<unsigned char>& server_secret,
                                              bool server = true);
  bool install(Direction& d, const unsigned char* secret);
  bool next_generation(Direction& d);  // KeyUpdate: secret_{n+1} = Expand-Label(secret_n, ...)
  // Seals `type` + `plain` (+ `padding` zero bytes) into a record appended to out_.
  bool seal(std::uint8_t type, const unsigned char* plain, std::size_t size,
            std::size_t padding = 0);
  detail::Step flush(int fd, boost::system::error_code& ec);
  // Moves bytes of ahead_ to in_, until in_ holds `needed`; false when there are none.
  bool take_ahead(std::size_t needed);
  // Opens the complete record at the front of in_: 0, or why not.
  int open(std::size_t record_size, std::uint8_t& type);
  int handle_handshake(const unsigned char* data, std::size_t size);
  // Ends the connection for `why`: final error, and a fatal alert to the peer (best effort)
  // when the failure is the peer's.
  detail::Step stop(int fd, boost::system::error_code& ec, int why);

  Suite suite_;
  std::size_t secret_length_;
  Direction read_;
  Direction write_;
  // Bytes read from the socket and not consumed yet: only while a record is incomplete or
  // its plaintext was not all taken (an idle connection holds no buffer).
  std::vector<unsigned char> in_;  // at most one record
  std::size_t plain_begin_ = 0, plain_end_ = 0;  // undelivered application data within in_
  // Bytes read past in_'s record, for the records after it (at most one read's worth: the
  // socket is read only once they are used up), and whether the last read emptied the socket.
  std::vector<unsigned char> ahead_;
  std::size_t ahead_begin_ = 0;
  bool drained_ = false;
  unsigned records_without_data_ = 0;            // in a row: empty records, KeyUpdates
  // A record (or two, with a KeyUpdate) not yet all on the socket.
  std::vector<unsigned char> out_;
  std::size_t out_sent_ = 0;
  std::size_t out_plain_ = 0;  // application bytes the pending record carries
  // Records per write key before our own KeyUpdate: 2^23 (§5.5), taken at creation from
  // rekey_default_, which only tests change (Tls13RecordsSeam).
  static std::atomic<std::uint64_t> rekey_default_;
  std::uint64_t rekey_after_;
  bool key_update_owed_ = false;
  bool close_sent_ = false;
  bool close_received_ = false;
  boost::system::error_code failed_;  // final: every call after a failure returns it
};

}  // namespace edgehub::net

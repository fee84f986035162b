#include <edgehub/net/tls13_records.hpp>
#include <edgehub/net/tls_stream.hpp>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace edgehub::net {
namespace {

using boost::system::error_code;
using detail::Step;

constexpr std::size_t kHeader = 5;
constexpr std::size_t kTag = 16;
constexpr std::size_t kMaxPlain = 1 << 14;               // §5.1
constexpr std::size_t kMaxCiphertext = kMaxPlain + 256;  // §5.2
constexpr std::uint8_t kAlert = 21, kHandshake = 22, kApplicationData = 23;
constexpr std::uint8_t kKeyUpdate = 24;
constexpr unsigned kMaxRecordsWithoutData = 32;    // as OpenSSL's limit on empty records
constexpr std::uint64_t kRekeyAfter = 1ull << 23;  // records per write key (§5.5)
constexpr std::uint8_t kCloseNotify = 0, kUserCanceled = 90;

// Failures of the record layer; a received alert is alert_base + its description.
enum Failure {
  bad_record_mac = 1,
  record_overflow,
  unexpected_message,
  decode_error,
  illegal_parameter,
  sequence_exhausted,
  crypto_failure,
  write_after_close,
  alert_base = 256,
};

// The fatal alert (§6.2) that tells the peer about a failure it caused; 0: none.
std::uint8_t alert_for(int why) {
  switch (why) {
    case bad_record_mac: return 20;
    case record_overflow: return 22;
    case unexpected_message: return 10;
    case decode_error: return 50;
    case illegal_parameter: return 47;
    default: return 0;
  }
}

class RecordCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "edgehub.tls13"; }
  std::string message(int ev) const override {
    switch (ev) {
      case bad_record_mac: return "TLS record failed authentication (bad_record_mac)";
      case record_overflow: return "TLS record over the size limit (record_overflow)";
      case unexpected_message: return "unexpected TLS record or message (unexpected_message)";
      case decode_error: return "malformed TLS message (decode_error)";
      case illegal_parameter: return "bad KeyUpdate request (illegal_parameter)";
      case sequence_exhausted: return "TLS record sequence number exhausted";
      case crypto_failure: return "TLS record protection failed (OpenSSL)";
      case write_after_close: return "write after close_notify";
      default:
        if (ev > alert_base) return "peer sent TLS alert " + std::to_string(ev - alert_base);
        return "TLS record layer error " + std::to_string(ev);
    }
  }
};

const RecordCategory& record_category() {
  static const RecordCategory category;
  return category;
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }
};

// One context per thread and direction, re-keyed for each record: a connection keeps only
// its keys (an EVP_CIPHER_CTX with its key schedule is ~1 KB). Null if OpenSSL has no memory.
// `keyed_by`: the connection whose key schedule the context holds now.
struct ThreadCtx {
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx{EVP_CIPHER_CTX_new()};
  const void* keyed_by = nullptr;
};

ThreadCtx& thread_ctx(bool sealing) {
  thread_local ThreadCtx seal, open;
  return sealing ? seal : open;
}

// Keys this thread's context for one record of `owner`. The cipher is passed only when the
// context has another one: passing it again would free and re-create the provider's context
// on every record.
EVP_CIPHER_CTX* key_record(const void* owner, const EVP_CIPHER* cipher,
                           const unsigned char* key, const unsigned char* nonce, bool sealing) {
  ThreadCtx& t = thread_ctx(sealing);
  EVP_CIPHER_CTX* ctx = t.ctx.get();
  if (ctx == nullptr) return nullptr;
  t.keyed_by = owner;
  const EVP_CIPHER* use = EVP_CIPHER_CTX_get0_cipher(ctx) == cipher ? nullptr : cipher;
  const bool ok = sealing ? EVP_EncryptInit_ex2(ctx, use, key, nonce, nullptr) == 1
                          : EVP_DecryptInit_ex2(ctx, use, key, nonce, nullptr) == 1;
  return ok ? ctx : nullptr;
}

// A connection going away leaves no key schedule of its own behind in this thread's
// contexts: they are keyed with zeros instead (one key expansion; the cipher stays). A
// connection destroyed on another thread than its last record's leaves that thread's
// context as it is until the next record there re-keys it.
void forget_keys(const void* owner, const EVP_CIPHER* cipher) {
  static const std::array<unsigned char, 32> zero_key{};
  static const std::array<unsigned char, 12> zero_iv{};
  for (const bool sealing : {true, false}) {
    ThreadCtx& t = thread_ctx(sealing);
    if (t.keyed_by != owner || t.ctx == nullptr) continue;
    if (key_record(nullptr, cipher, zero_key.data(), zero_iv.data(), sealing) == nullptr) {
      EVP_CIPHER_CTX_reset(t.ctx.get());  // the cipher is re-fetched at the next record
      drain_openssl_errors();
    }
    t.keyed_by = nullptr;
  }
}

// HKDF-Expand-Label(secret, label, "", length) (§7.1).
bool expand_label(const EVP_MD* digest, const unsigned char* secret, std::size_t secret_length,
                  const std::string& label, unsigned char* out, std::size_t length) {
  static EVP_KDF* hkdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  // HkdfLabel: uint16 length, opaque label<7..255> = "tls13 " + label, opaque context<0..255>.
  const std::string full = "tls13 " + label;
  std::array<unsigned char, 2 + 1 + 255 + 1> info{};
  info[0] = static_cast<unsigned char>(length >> 8);
  info[1] = static_cast<unsigned char>(length);
  info[2] = static_cast<unsigned char>(full.size());
  std::memcpy(info.data() + 3, full.data(), full.size());
  const std::size_t info_size = 3 + full.size() + 1;  // the last byte: an empty context
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                       const_cast<char*>(EVP_MD_get0_name(digest)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<unsigned char*>(secret),
                                        secret_length),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info_size),
      OSSL_PARAM_construct_end()};
  EVP_KDF_CTX* ctx = hkdf ? EVP_KDF_CTX_new(hkdf) : nullptr;
  const bool ok = ctx != nullptr && EVP_KDF_derive(ctx, out, length, params) == 1;
  EVP_KDF_CTX_free(ctx);
  if (!ok) drain_openssl_errors();
  return ok;
}

// The per-record nonce: the IV XOR the sequence number, left-padded (§5.3).
std::array<unsigned char, 12> nonce(const std::array<unsigned char, 12>& iv, std::uint64_t seq) {
  auto n = iv;
  for (int i = 0; i < 8; ++i) n[11 - i] ^= static_cast<unsigned char>(seq >> (8 * i));
  return n;
}

// Frees a record buffer; what it held (plaintext, once a record is opened in place) is
// wiped first.
void release(std::vector<unsigned char>& buffer) {
  OPENSSL_cleanse(buffer.data(), buffer.size());
  std::vector<unsigned char>().swap(buffer);
}

// A connection's two application traffic secrets (traffic secret 0, §7.1), as OpenSSL's key
// log hands them over; held in the SSL's ex_data until taken. Wiped when destroyed.
struct TrafficSecrets {
  std::vector<unsigned char> client;
  std::vector<unsigned char> server;
  ~TrafficSecrets() {
    OPENSSL_cleanse(client.data(), client.size());
    OPENSSL_cleanse(server.data(), server.size());
  }
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void free_secrets(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<TrafficSecrets*>(ptr);
}

int secrets_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_secrets);
  return index;
}

// Key log lines: "<label> <client random, hex> <secret, hex>" (NSS key log format).
void keep_secret(const SSL* ssl, const char* line) {
  const std::string_view text(line);
  const bool client = text.starts_with("CLIENT_TRAFFIC_SECRET_0 ");
  if (!client && !text.starts_with("SERVER_TRAFFIC_SECRET_0 ")) return;
  const auto at = text.rfind(' ');
  const std::string_view hex = text.substr(at + 1);
  if (hex.empty() || hex.size() % 2 != 0 || hex.size() / 2 > EVP_MAX_MD_SIZE) return;
  std::vector<unsigned char> secret(hex.size() / 2);
  for (std::size_t i = 0; i < secret.size(); ++i) {
    const int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return;
    secret[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  SSL* mutable_ssl = const_cast<SSL*>(ssl);  // ex_data of the connection being logged
  auto* secrets = static_cast<TrafficSecrets*>(SSL_get_ex_data(mutable_ssl, secrets_index()));
  if (secrets == nullptr) {
    secrets = new TrafficSecrets;
    if (SSL_set_ex_data(mutable_ssl, secrets_index(), secrets) != 1) {
      delete secrets;
      return;
    }
  }
  auto& kept = client ? secrets->client : secrets->server;
  OPENSSL_cleanse(kept.data(), kept.size());
  kept = std::move(secret);
}

std::unique_ptr<TrafficSecrets> take_secrets(SSL* ssl) {
  auto* secrets = static_cast<TrafficSecrets*>(SSL_get_ex_data(ssl, secrets_index()));
  if (secrets == nullptr) return nullptr;
  SSL_set_ex_data(ssl, secrets_index(), nullptr);
  return std::unique_ptr<TrafficSecrets>(secrets);
}

}  // namespace

void capture_traffic_secrets(SSL_CTX* ctx) { SSL_CTX_set_keylog_callback(ctx, keep_secret); }

std::unique_ptr<Tls13Records> Tls13Records::take_over(SSL* ssl) {
  if (ssl == nullptr || !SSL_is_server(ssl) || !SSL_is_init_finished(ssl) ||
      SSL_version(ssl) != TLS1_3_VERSION || SSL_get_num_tickets(ssl) != 0 ||
      SSL_get_shutdown(ssl) != 0 || SSL_has_pending(ssl)) {
    return nullptr;
  }
  const auto known = suite(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(ssl)));
  if (!known) return nullptr;
  const auto secrets = take_secrets(ssl);
  if (!secrets) return nullptr;
  return create(*known, secrets->client, secrets->server);
}

std::optional<Tls13Records::Suite> Tls13Records::suite(std::uint16_t id) {
  struct Known {
    EVP_CIPHER* cipher;
    EVP_MD* digest;
  };
  static const Known aes128{EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr),
                            EVP_MD_fetch(nullptr, "SHA256", nullptr)};
  static const Known aes256{EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr),
                            EVP_MD_fetch(nullptr, "SHA384", nullptr)};
  static const Known chacha{EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr),
                            EVP_MD_fetch(nullptr, "SHA256", nullptr)};
  const Known* k = id == 0x1301 ? &aes128 : id == 0x1302 ? &aes256 : id == 0x1303 ? &chacha : nullptr;
  if (k == nullptr || k->cipher == nullptr || k->digest == nullptr) return std::nullopt;
  return Suite{k->cipher, k->digest, static_cast<std::size_t>(EVP_CIPHER_get_key_length(k->cipher))};
}

std::atomic<std::uint64_t> Tls13Records::rekey_default_{kRekeyAfter};

Tls13Records::Tls13Records(const Suite& suite, std::size_t secret_length)
    : suite_(suite), secret_length_(secret_length), rekey_after_(rekey_default_.load()) {}

std::unique_ptr<Tls13Records> Tls13Records::create(const Suite& suite,
                                                   const std::vector<unsigned char>& client_secret,
                                                   const std::vector<unsigned char>& server_secret,
                                                   bool server) {
  const auto length = static_cast<std::size_t>(EVP_MD_get_size(suite.digest));
  if (client_secret.size() != length || server_secret.size() != length ||
      length > EVP_MAX_MD_SIZE || suite.key_length > Direction{}.key.size()) {
    return nullptr;
  }
  std::unique_ptr<Tls13Records> records(new Tls13Records(suite, length));
  const auto& read_secret = server ? client_secret : server_secret;
  const auto& write_secret = server ? server_secret : client_secret;
  if (!records->install(records->read_, read_secret.data()) ||
      !records->install(records->write_, write_secret.data())) {
    return nullptr;
  }
  return records;
}

Tls13Records::~Tls13Records() {
  forget_keys(this, suite_.cipher);
  release(in_);
  release(ahead_);
  release(out_);
  OPENSSL_cleanse(&read_, sizeof(read_));
  OPENSSL_cleanse(&write_, sizeof(write_));
}

bool Tls13Records::install(Direction& d, const unsigned char* secret) {
  Direction next;
  std::memcpy(next.secret.data(), secret, secret_length_);
  const bool ok = expand_label(suite_.digest, next.secret.data(), secret_length_, "key",
                               next.key.data(), suite_.key_length) &&
                  expand_label(suite_.digest, next.secret.data(), secret_length_, "iv",
                               next.iv.data(), next.iv.size());
  if (ok) d = next;
  OPENSSL_cleanse(&next, sizeof(next));
  return ok;
}

bool Tls13Records::next_generation(Direction& d) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> next{};
  const bool ok = expand_label(suite_.digest, d.secret.data(), secret_length_, "traffic upd",
                               next.data(), secret_length_) &&
                  install(d, next.data());
  OPENSSL_cleanse(next.data(), next.size());
  return ok;
}

bool Tls13Records::seal(std::uint8_t type, const unsigned char* plain, std::size_t size,
                        std::size_t padding) {
  if (write_.sequence == UINT64_MAX) return false;
  const std::size_t inner = size + 1 + padding;
  const std::size_t length = inner + kTag;
  const std::size_t at = out_.size();
  out_.resize(at + kHeader + length);
  unsigned char* header = out_.data() + at;
  header[0] = kApplicationData;  // the outer type of every protected record (§5.2)
  header[1] = 0x03;
  header[2] = 0x03;
  header[3] = static_cast<unsigned char>(length >> 8);
  header[4] = static_cast<unsigned char>(length);
  unsigned char* body = header + kHeader;
  const auto iv = nonce(write_.iv, write_.sequence);
  EVP_CIPHER_CTX* ctx = key_record(this, suite_.cipher, write_.key.data(), iv.data(), true);
  int outl = 0, written = 0;
  bool ok = ctx != nullptr && EVP_EncryptUpdate(ctx, nullptr, &outl, header, kHeader) == 1;
  if (ok && size > 0) {
    ok = EVP_EncryptUpdate(ctx, body, &outl, plain, static_cast<int>(size)) == 1;
    written += ok ? outl : 0;
  }
  ok = ok && EVP_EncryptUpdate(ctx, body + written, &outl, &type, 1) == 1;
  written += ok ? outl : 0;
  if (ok && padding > 0) {  // only tests pad (Tls13RecordsSeam)
    const std::vector<unsigned char> zeros(padding);
    ok = EVP_EncryptUpdate(ctx, body + written, &outl, zeros.data(), static_cast<int>(padding)) == 1;
    written += ok ? outl : 0;
  }
  ok = ok && EVP_EncryptFinal_ex(ctx, body + written, &outl) == 1;
  written += ok ? outl : 0;
  ok = ok && static_cast<std::size_t>(written) == inner &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTag, body + inner) == 1;
  if (!ok) {
    out_.resize(at);
    drain_openssl_errors();
    return false;
  }
  ++write_.sequence;
  return true;
}

Step Tls13Records::flush(int fd, error_code& ec) {
  while (out_sent_ < out_.size()) {
    const ssize_t r = ::send(fd, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (r > 0) {
      out_sent_ += static_cast<std::size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return Step::want_write;
    } else {
      ec.assign(r < 0 ? errno : EPIPE, boost::system::system_category());
      failed_ = ec;
      return Step::failed;
    }
  }
  release(out_);  // an idle connection keeps no buffer
  out_sent_ = 0;
  return Step::done;
}

Step Tls13Records::stop(int fd, error_code& ec, int why) {
  ec.assign(why, record_category());
  failed_ = ec;
  plain_begin_ = plain_end_ = 0;
  if (const auto alert = alert_for(why); alert != 0 && !close_sent_) {
    // One try, after whatever is still unsent: the connection is closed next anyway.
    const unsigned char fatal[] = {2, alert};
    close_sent_ = true;
    if (seal(kAlert, fatal, sizeof fatal)) {
      (void)::send(fd, out_.data() + out_sent_, out_.size() - out_sent_,
                   MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  }
  release(in_);
  release(ahead_);
  ahead_begin_ = 0;
  release(out_);
  out_sent_ = 0;
  return Step::failed;
}

Step Tls13Records::write(int fd, const void* data, std::size_t size, std::size_t& n,
                         error_code& ec) {
  n = 0;
  if (failed_) {
    ec = failed_;
    return Step::failed;
  }
  if (out_.empty()) {
    if (close_sent_) {
      ec.assign(write_after_close, record_category());
      return Step::failed;
    }
    const std::size_t take = std::min(size, kMaxPlain);
    if (take == 0) return Step::done;
    // Our KeyUpdate, under the current key, before our next data (§4.6.3): owed to the peer,
    // or due after 2^23 records.
    if (key_update_owed_ || write_.sequence >= rekey_after_) {
      const unsigned char update[] = {kKeyUpdate, 0, 0, 1, 0};  // update_not_requested
      if (!seal(kHandshake, update, sizeof update) || !next_generation(write_)) {
        return stop(fd, ec, crypto_failure);
      }
      key_update_owed_ = false;
    }
    if (!seal(kApplicationData, static_cast<const unsigned char*>(data), take)) {
      return stop(fd, ec, crypto_failure);
    }
    out_plain_ = take;
  }
  const Step step = flush(fd, ec);
  if (step == Step::done) n = std::exchange(out_plain_, 0);
  return step;
}

Step Tls13Records::close_notify(int fd, error_code& ec) {
  if (failed_) {
    ec = failed_;
    return Step::failed;
  }
  if (!close_sent_) {
    const unsigned char alert[] = {1, 0};  // warning, close_notify
    if (!seal(kAlert, alert, sizeof alert)) return stop(fd, ec, crypto_failure);
    close_sent_ = true;
  }
  return flush(fd, ec);
}

int Tls13Records::open(std::size_t record_size, std::uint8_t& type) {
  unsigned char* header = in_.data();
  const std::size_t sealed = record_size - kHeader - kTag;  // the caller checked the length
  if (read_.sequence == UINT64_MAX) return sequence_exhausted;
  unsigned char* body = header + kHeader;
  const auto iv = nonce(read_.iv, read_.sequence);
  EVP_CIPHER_CTX* ctx = key_record(this, suite_.cipher, read_.key.data(), iv.data(), false);
  int outl = 0;
  bool ok = ctx != nullptr &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTag, body + sealed) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &outl, header, kHeader) == 1 &&
            EVP_DecryptUpdate(ctx, body, &outl, body, static_cast<int>(sealed)) == 1;
  const int opened = ok ? outl : 0;
  ok = ok && EVP_DecryptFinal_ex(ctx, body + opened, &outl) == 1;
  if (!ok) {
    drain_openssl_errors();
    return bad_record_mac;
  }
  ++read_.sequence;
  if (sealed > kMaxPlain + 1) return record_overflow;  // TLSInnerPlaintext, padding included
  // TLSInnerPlaintext: content, then the type, then zero padding (§5.4).
  std::size_t end = sealed;
  while (end > 0 && body[end - 1] == 0) --end;
  if (end == 0) return unexpected_message;
  type = body[end - 1];
  plain_begin_ = kHeader;
  plain_end_ = kHeader + end - 1;
  return 0;
}

// One KeyUpdate, alone at the end of its record (§5.1); nothing else comes from a client.
int Tls13Records::handle_handshake(const unsigned char* data, std::size_t size) {
  if (size < 4 || data[0] != kKeyUpdate) return unexpected_message;
  const std::size_t length = (std::size_t{data[1]} << 16) | (std::size_t{data[2]} << 8) | data[3];
  if (4 + length != size) return unexpected_message;
  if (length != 1) return decode_error;
  if (data[4] > 1) return illegal_parameter;
  if (!next_generation(read_)) return crypto_failure;  // for the records after this one
  if (data[4] == 1) key_update_owed_ = true;
  return 0;
}

bool Tls13Records::take_ahead(std::size_t needed) {
  if (ahead_begin_ == ahead_.size()) return false;
  const std::size_t take = std::min(needed - in_.size(), ahead_.size() - ahead_begin_);
  const auto from = ahead_.begin() + static_cast<std::ptrdiff_t>(ahead_begin_);
  in_.reserve(needed);
  in_.insert(in_.end(), from, from + static_cast<std::ptrdiff_t>(take));
  ahead_begin_ += take;
  if (ahead_begin_ == ahead_.size()) {
    release(ahead_);
    ahead_begin_ = 0;
  }
  return true;
}

Step Tls13Records::read(int fd, void* data, std::size_t size, std::size_t& n, error_code& ec) {
  n = 0;
  if (failed_) {
    ec = failed_;
    return Step::failed;
  }
  if (size == 0) return Step::done;
  for (;;) {
    if (plain_begin_ < plain_end_) {
      n = std::min(size, plain_end_ - plain_begin_);
      std::memcpy(data, in_.data() + plain_begin_, n);
      plain_begin_ += n;
      if (plain_begin_ == plain_end_) {
        plain_begin_ = plain_end_ = 0;
        release(in_);  // in_ holds one record: what follows is in ahead_
      }
      records_without_data_ = 0;
      return Step::done;
    }
    if (close_received_) {
      ec = asio::error::eof;
      return Step::failed;
    }
    std::size_t needed = kHeader;
    if (in_.size() >= kHeader) {
      if (in_[0] != kApplicationData) return stop(fd, ec, unexpected_message);
      const std::size_t length = (std::size_t{in_[3]} << 8) | in_[4];
      if (length > kMaxCiphertext) return stop(fd, ec, record_overflow);
      if (length < kTag + 1) return stop(fd, ec, bad_record_mac);  // cannot be a sealed record
      needed = kHeader + length;
    }
    if (in_.size() == needed && needed > kHeader) {
      if (++records_without_data_ > kMaxRecordsWithoutData) {
        return stop(fd, ec, unexpected_message);
      }
      std::uint8_t type = 0;
      if (const int why = open(needed, type)) return stop(fd, ec, why);
      if (type == kApplicationData) {
        if (plain_begin_ == plain_end_) {  // an empty record: allowed, nothing to deliver
          plain_begin_ = plain_end_ = 0;
          release(in_);
        }
        continue;
      }
      const unsigned char* content = in_.data() + plain_begin_;
      const std::size_t content_size = plain_end_ - plain_begin_;
      if (type == kAlert) {
        // §5.1: an alert record holds exactly one alert; none at all is unexpected_message.
        if (content_size == 0) return stop(fd, ec, unexpected_message);
        if (content_size != 2) return stop(fd, ec, decode_error);
        if (content[1] == kUserCanceled) {
          // A closure alert (§6.1), not an error: its close_notify is to follow. It counts
          // among the records without data, so a peer cannot send them without end.
          plain_begin_ = plain_end_ = 0;
          release(in_);
          continue;
        }
        if (content[1] != kCloseNotify) {  // the peer's error: nothing to answer
          ec.assign(alert_base + content[1], record_category());
          failed_ = ec;
          plain_begin_ = plain_end_ = 0;
          release(in_);
          return Step::failed;
        }
        close_received_ = true;  // close_notify
      } else if (type == kHandshake) {
        if (const int why = handle_handshake(content, content_size)) return stop(fd, ec, why);
      } else {
        return stop(fd, ec, unexpected_message);
      }
      plain_begin_ = plain_end_ = 0;
      release(in_);
      continue;
    }
    // What this record still lacks: first the bytes already taken off the socket, then the
    // socket's, all it holds up to a largest record in one call (a record, its header
    // included, is usually one read); what follows this record waits in ahead_.
    if (take_ahead(needed)) continue;
    if (drained_) {
      // The last read emptied the socket: wait for readiness rather than read again for
      // EAGAIN (the reactor re-checks readiness when the wait starts, so nothing is missed).
      drained_ = false;
      return Step::want_read;
    }
    const std::size_t have = in_.size();
    thread_local std::array<unsigned char, kHeader + kMaxCiphertext> scratch;  // ciphertext only
    const ssize_t r = ::recv(fd, scratch.data(), scratch.size(), 0);
    const int error = errno;
    if (r > 0) {
      const auto got = static_cast<std::size_t>(r);
      drained_ = got < scratch.size();
      const std::size_t take = std::min(got, needed - have);
      in_.reserve(needed);
      in_.insert(in_.end(), scratch.data(), scratch.data() + take);
      if (take < got) ahead_.assign(scratch.data() + take, scratch.data() + got);
      continue;
    }
    if (have == 0) release(in_);
    if (r < 0 && error == EINTR) continue;
    if (r < 0 && (error == EAGAIN || error == EWOULDBLOCK)) return Step::want_read;
    if (r == 0) {
      ec = stream_truncated_error();
    } else {
      ec.assign(error, boost::system::system_category());
    }
    failed_ = ec;
    return Step::failed;
  }
}

}  // namespace edgehub::net

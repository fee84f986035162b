// The TLS 1.3 record reader (Tls13Records, the server end) on what a peer may send after the
// handshake. The keys are set through the test seam (tls13_records_seam.hpp), so most of an
// input is sealed with the peer's real key and reaches past the AEAD check.
//
// Input: byte 0 picks the cipher suite; then a list of operations, each one byte (op % 6)
// and its operands:
//   0 raw:       n (2 bytes), n bytes written as they are (headers, forgeries, partial records)
//   1 record:    type, padding / 64 (1 byte), n (2 bytes), n bytes sealed with that inner
//                content type and padding
//   2 KeyUpdate: request byte (0, 1, anything), sealed; the peer's write key moves on
//   3 alert:     level, description (an empty or long alert is op 1 with type 21)
//   4 write:     n (1 byte): the server writes n bytes (its owed KeyUpdate goes first)
//   5 close:     the peer closes its write side (the reader then ends)
// After each operation the server reads all it can, and the peer reads all the server sent.
// Invariants: nothing crashes; a failure is final (the next read fails with the same error);
// delivered data is a prefix of what was sealed as application data (all of it, unless the
// connection failed or raw bytes left a record incomplete).

#include <edgehub/net/tls13_records_seam.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using edgehub::net::Tls13Records;
using edgehub::net::Tls13RecordsSeam;
using edgehub::net::detail::Step;

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  std::uint8_t byte() { return at_ < size_ ? data_[at_++] : 0; }
  std::size_t u16() { return std::size_t{byte()} << 8 | byte(); }
  // Up to n bytes (fewer at the end of the input).
  std::vector<unsigned char> bytes(std::size_t n) {
    const std::size_t take = std::min(n, size_ - std::min(at_, size_));
    std::vector<unsigned char> out(data_ + at_, data_ + at_ + take);
    at_ += take;
    return out;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

struct Connection {
  int server_fd = -1, peer_fd = -1;
  std::unique_ptr<Tls13Records> server, peer;
  bool failed = false;
  bool raw_sent = false;  // raw bytes may leave a record incomplete: data then waits
  boost::system::error_code error;
  std::string expected;   // application data sealed by the peer, not yet delivered
  std::string delivered;  // what the server's reads gave

  ~Connection() {
    if (server_fd >= 0) ::close(server_fd);
    if (peer_fd >= 0) ::close(peer_fd);
  }

  // The server reads until it waits for more; the peer takes whatever came back.
  void pump() {
    char buf[4096];
    while (!failed) {
      std::size_t n = 0;
      boost::system::error_code ec;
      const Step step = server->read(server_fd, buf, sizeof buf, n, ec);
      if (step == Step::done) {
        delivered.append(buf, n);
        continue;
      }
      if (step == Step::failed) {
        failed = true;
        error = ec;
        // Final: the next call fails the same way.
        boost::system::error_code again;
        if (server->read(server_fd, buf, sizeof buf, n, again) != Step::failed || again != ec) {
          std::abort();
        }
      }
      break;
    }
    for (;;) {
      std::size_t n = 0;
      boost::system::error_code ec;
      if (peer->read(peer_fd, buf, sizeof buf, n, ec) != Step::done) break;
    }
  }

  void send(const std::vector<unsigned char>& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t r = ::send(peer_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (r > 0) {
        sent += static_cast<std::size_t>(r);
        continue;
      }
      if (failed) return;  // the server stopped reading: the rest goes nowhere
      pump();              // the socket buffer is full: let the server take some
    }
  }

  void seal(std::uint8_t type, const std::vector<unsigned char>& content, std::size_t padding) {
    const auto record = Tls13RecordsSeam::seal(*peer, type, content.data(), content.size(), padding);
    if (record.empty()) return;
    // The receiver's view (§5.4): the type is the last non-zero byte of content + type.
    std::vector<unsigned char> inner = content;
    inner.push_back(type);
    while (!inner.empty() && inner.back() == 0) inner.pop_back();
    if (!inner.empty() && inner.back() == 23) expected.append(inner.begin(), inner.end() - 1);
    send(record);
  }
};

std::vector<unsigned char> secret(std::size_t size, unsigned char seed) {
  std::vector<unsigned char> s(size);
  for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<unsigned char>(seed * 31 + i);
  return s;
}

void run(Connection& c, Input& in) {
  while (!in.empty() && !c.failed) {
    switch (in.byte() % 6) {
      case 0:
        c.raw_sent = true;
        c.send(in.bytes(in.u16()));
        break;
      case 1: {
        const std::uint8_t type = in.byte();
        const std::size_t padding = std::size_t{in.byte()} * 64;
        c.seal(type, in.bytes(in.u16()), padding);
        break;
      }
      case 2: {
        const std::vector<unsigned char> update = {24, 0, 0, 1, in.byte()};
        c.seal(22, update, 0);
        if (!Tls13RecordsSeam::update_write_key(*c.peer)) std::abort();
        break;
      }
      case 3: c.seal(21, {in.byte(), in.byte()}, 0); break;
      case 4: {
        const std::vector<unsigned char> data(in.byte(), 'w');
        std::size_t n = 0;
        boost::system::error_code ec;
        (void)c.server->write(c.server_fd, data.data(), data.size(), n, ec);
        break;
      }
      default: ::shutdown(c.peer_fd, SHUT_WR); break;
    }
    c.pump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Input in(data, size);
  const std::size_t suite = in.byte() % 3;  // TLS_AES_128_GCM_SHA256, _256_GCM_SHA384, CHACHA20
  Connection c;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) != 0) std::abort();
  c.server_fd = fds[0];
  c.peer_fd = fds[1];
  // Both ends of each suite, derived once (HKDF is most of an input's time otherwise); each
  // input starts from fresh copies.
  using End = Tls13RecordsSeam::End;
  static const auto ends = [] {
    std::array<std::array<std::unique_ptr<Tls13Records>, 2>, 3> e;
    for (std::uint16_t i = 0; i < 3; ++i) {
      const std::size_t n = i == 1 ? 48 : 32;
      e[i][0] = Tls13RecordsSeam::from_secrets(0x1301 + i, End::server, secret(n, 1), secret(n, 2));
      e[i][1] = Tls13RecordsSeam::from_secrets(0x1301 + i, End::client, secret(n, 1), secret(n, 2));
      if (!e[i][0] || !e[i][1]) std::abort();
    }
    return e;
  }();
  c.server = Tls13RecordsSeam::copy_keys(*ends[suite][0]);
  c.peer = Tls13RecordsSeam::copy_keys(*ends[suite][1]);
  run(c, in);
  // Whatever the server delivered is a prefix of the application data the peer sealed
  // (raw bytes never authenticate).
  if (c.expected.compare(0, c.delivered.size(), c.delivered) != 0) std::abort();
  if (!c.failed && !c.raw_sent && c.delivered != c.expected) std::abort();
  return 0;
}

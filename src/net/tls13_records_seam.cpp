// Test seam of Tls13Records (see tls13_records_seam.hpp): tests and the fuzz target only.
#include <edgehub/net/tls13_records_seam.hpp>

#include <utility>

namespace edgehub::net {

std::unique_ptr<Tls13Records> Tls13RecordsSeam::from_secrets(
    std::uint16_t suite, End end, const std::vector<unsigned char>& client_secret,
    const std::vector<unsigned char>& server_secret) {
  const auto known = Tls13Records::suite(suite);
  if (!known) return nullptr;
  return Tls13Records::create(*known, client_secret, server_secret, end == End::server);
}

std::unique_ptr<Tls13Records> Tls13RecordsSeam::copy_keys(const Tls13Records& r) {
  std::unique_ptr<Tls13Records> copy(new Tls13Records(r.suite_, r.secret_length_));
  copy->read_ = r.read_;
  copy->write_ = r.write_;
  copy->rekey_after_ = r.rekey_after_;
  return copy;
}

std::vector<unsigned char> Tls13RecordsSeam::seal(Tls13Records& r, std::uint8_t type,
                                                  const unsigned char* content, std::size_t size,
                                                  std::size_t padding) {
  constexpr std::size_t kTag = 16, kMaxLength = 0xffff;
  if (!r.out_.empty() || size + 1 + padding + kTag > kMaxLength) return {};
  if (!r.seal(type, content, size, padding)) return {};
  return std::exchange(r.out_, {});
}

bool Tls13RecordsSeam::update_write_key(Tls13Records& r) { return r.next_generation(r.write_); }

std::uint64_t Tls13RecordsSeam::set_rekey_after(std::uint64_t records) {
  return Tls13Records::rekey_default_.exchange(records);
}

}  // namespace edgehub::net

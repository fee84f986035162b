#include <edgehub/net/address_range.hpp>

#include <charconv>

namespace edgehub::net {

std::optional<AddressRange> AddressRange::parse(const std::string& text) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(text.substr(0, slash), ec);
  if (ec) return std::nullopt;
  const unsigned bits = address.is_v4() ? 32 : 128;
  unsigned prefix = bits;
  if (slash != std::string::npos) {
    const char* first = text.data() + slash + 1;
    const char* last = text.data() + text.size();
    const auto [end, err] = std::from_chars(first, last, prefix);
    if (err != std::errc() || end != last || first == last || prefix > bits) return std::nullopt;
  }
  return AddressRange{address, prefix};
}

bool AddressRange::contains(const boost::asio::ip::address& a) const {
  if (a.is_v4() != network.is_v4()) return false;
  const auto bytes_of = [](const boost::asio::ip::address& x) {
    std::array<unsigned char, 16> out{};
    if (x.is_v4()) {
      const auto b = x.to_v4().to_bytes();
      std::copy(b.begin(), b.end(), out.begin());
    } else {
      out = x.to_v6().to_bytes();
    }
    return out;
  };
  const auto want = bytes_of(network);
  const auto have = bytes_of(a);
  for (unsigned i = 0; i < prefix; ++i) {
    const unsigned byte = i / 8;
    const unsigned mask = 0x80u >> (i % 8);
    if ((want[byte] & mask) != (have[byte] & mask)) return false;
  }
  return true;
}

bool any_contains(const std::vector<AddressRange>& ranges, const boost::asio::ip::address& a) {
  auto address = a;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
  }
  for (const auto& range : ranges) {
    if (range.contains(address)) return true;
  }
  return false;
}

}  // namespace edgehub::net

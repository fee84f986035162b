#pragma once
// An IP address or a CIDR block ("10.0.0.0/8", "192.168.1.7", "::1"), for the lists of
// trusted peers in the configuration.

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <vector>

namespace edgehub::net {

struct AddressRange {
  boost::asio::ip::address network;
  unsigned prefix = 0;

  // nullopt if `text` is neither an address nor a CIDR block.
  static std::optional<AddressRange> parse(const std::string& text);
  bool contains(const boost::asio::ip::address& a) const;
};

// Whether any of `ranges` holds `a` (an IPv4-mapped IPv6 address counts as its IPv4 one).
bool any_contains(const std::vector<AddressRange>& ranges, const boost::asio::ip::address& a);

}  // namespace edgehub::net

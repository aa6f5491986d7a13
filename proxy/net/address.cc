#include "proxy/net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>

namespace tokentap {

std::string format_host_port(const HostPort& address) {
  const bool ipv6 = address.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

HostPort host_port_of(const sockaddr* address) {
  std::array<char, INET6_ADDRSTRLEN> host{};
  if (address == nullptr) return {};
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, host.data(), host.size()) == nullptr) return {};
    return {host.data(), ntohs(in6->sin6_port)};
  }
  if (address->sa_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(address);
    if (inet_ntop(AF_INET, &in4->sin_addr, host.data(), host.size()) == nullptr) return {};
    return {host.data(), ntohs(in4->sin_port)};
  }
  return {};
}

}  // namespace tokentap

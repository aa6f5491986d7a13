#include "proxy/net/listen_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>

#include "proxy/net/address.h"

namespace tokentap {

int bind_listen_socket(const HostPort& address, PortSharing sharing) {
  auto fail = [&address](const char* reason) {
    return std::runtime_error("cannot listen on " + format_host_port(address) + ": " + reason);
  };
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  const char* host = address.host.empty() ? nullptr : address.host.c_str();
  if (int rc = getaddrinfo(host, port.c_str(), &hints, &found); rc != 0)
    throw fail(gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);

  int fd = ::socket(addresses->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sharing == PortSharing::shared) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (addresses->ai_family == AF_INET6) {
      // "::" takes IPv4 clients too, whatever net.ipv6.bindv6only says (libuv's default).
      int zero = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
  }
  if (fd < 0 || ::bind(fd, addresses->ai_addr, addresses->ai_addrlen) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw fail(uv_strerror(uv_translate_sys_error(err)));
  }
  return fd;
}

HostPort bound_address(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return {};
  return host_port_of(reinterpret_cast<const sockaddr*>(&address));
}

}  // namespace tokentap

// Listening sockets, made before any loop runs so that a bad address fails startup with a
// clear message. The proxy's workers and the admin listener both get theirs here.
#pragma once

#include "config/config.h"

namespace tokentap {

// exclusive: a second socket on the same address fails with "address already in use".
// shared: SO_REUSEPORT, so every worker binds the same address and the kernel spreads the
// connections among them.
enum class PortSharing { exclusive, shared };

// Resolves `address` (a host name is resolved, blocking, and its first address used; an empty
// host means every interface) and returns a bound TCP socket, non-blocking and close-on-exec,
// with SO_REUSEADDR; an IPv6 socket also accepts IPv4 clients. It does not listen yet: the caller
// owns the descriptor and hands it to uv_tcp_open() and uv_listen(). Throws
// std::runtime_error("cannot listen on HOST:PORT: reason").
int bind_listen_socket(const HostPort& address, PortSharing sharing);

// The address `fd` is bound to (the real port when 0 was asked); {"", 0} if it cannot be read.
HostPort bound_address(int fd);

}  // namespace tokentap

// Socket addresses as HostPort values and as text for logs and error messages.
#pragma once

#include <sys/socket.h>

#include <string>

#include "config/config.h"

namespace tokentap {

// "host:port", or "[host]:port" when the host is an IPv6 literal.
std::string format_host_port(const HostPort& address);

// The numeric host and the port of an AF_INET or AF_INET6 address; {"", 0} for anything else.
HostPort host_port_of(const sockaddr* address);

}  // namespace tokentap

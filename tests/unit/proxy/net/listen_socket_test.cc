#include "proxy/net/listen_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>

#include "proxy/net/address.h"

using namespace tokentap;

TEST_CASE("format_host_port brackets IPv6 hosts", "[net]") {
  CHECK(format_host_port({"127.0.0.1", 8080}) == "127.0.0.1:8080");
  CHECK(format_host_port({"::1", 9901}) == "[::1]:9901");
  CHECK(format_host_port({"localhost", 0}) == "localhost:0");
}

TEST_CASE("host_port_of reads IPv4 and IPv6 addresses", "[net]") {
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = htons(8080);
  REQUIRE(inet_pton(AF_INET, "10.1.2.3", &in4.sin_addr) == 1);
  HostPort v4 = host_port_of(reinterpret_cast<const sockaddr*>(&in4));
  CHECK(v4.host == "10.1.2.3");
  CHECK(v4.port == 8080);

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(443);
  REQUIRE(inet_pton(AF_INET6, "fd00::1", &in6.sin6_addr) == 1);
  HostPort v6 = host_port_of(reinterpret_cast<const sockaddr*>(&in6));
  CHECK(v6.host == "fd00::1");
  CHECK(v6.port == 443);

  sockaddr unix_family{};
  unix_family.sa_family = AF_UNIX;
  CHECK(host_port_of(&unix_family).port == 0);
  CHECK(host_port_of(nullptr).host.empty());
}

TEST_CASE("listen sockets: port 0, shared and exclusive ports", "[net]") {
  const int first = bind_listen_socket({"127.0.0.1", 0}, PortSharing::shared);
  const HostPort bound = bound_address(first);
  CHECK(bound.host == "127.0.0.1");
  REQUIRE(bound.port != 0);
  REQUIRE(::listen(first, 8) == 0);

  // Workers share the port the first socket got.
  const int second = bind_listen_socket(bound, PortSharing::shared);
  CHECK(bound_address(second).port == bound.port);

  // An exclusive socket (the admin listener) refuses a port already taken.
  CHECK_THROWS_WITH(
      bind_listen_socket(bound, PortSharing::exclusive),
      "cannot listen on 127.0.0.1:" + std::to_string(bound.port) + ": address already in use");
  ::close(second);
  ::close(first);

  CHECK_THROWS_WITH(bind_listen_socket({"no-such-host.invalid", 0}, PortSharing::exclusive),
                    Catch::StartsWith("cannot listen on no-such-host.invalid:0: "));
}

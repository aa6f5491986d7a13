// One blocking HTTP/1.1 POST to an OTLP collector, plain or TLS, for the exporter's own thread
// (never an event loop): connect, handshake, send and read the answer's head, all before one
// deadline. TLS is the upstreams' TlsTransform over the blocking socket, with the same
// verification (CA store plus ca_file, peer verification, SNI and the host name check).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/net/tls.h"

namespace tokentap {

struct OtlpTarget {
  std::string host;  // no brackets
  uint16_t port = 80;
  std::string path;       // /v1/traces
  std::string authority;  // the Host header
  bool tls = false;
};

struct OtlpPostResult {
  int status = 0;  // the HTTP status; 0 for a transport or TLS failure
  std::optional<std::chrono::seconds> retry_after;
  bool tls_failed = false;  // the handshake failed (certificate verification included)
};

// POSTs `head` (request line and header lines, ending with the blank line) then `body`.
// `tls` is required when target.tls. Connection: close; the answer's body is not read.
OtlpPostResult otlp_post(const OtlpTarget& target, const TlsClientContext* tls,
                         std::string_view head, std::string_view body,
                         std::chrono::steady_clock::time_point deadline);

}  // namespace tokentap

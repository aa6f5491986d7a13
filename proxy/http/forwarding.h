// The two heads tokentap forwards, as pure functions of what was received: the request head
// it sends upstream and the response head it sends the client. Both drop hop-by-hop headers
// and every header the message's Connection header names, and state their own framing.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/http/headers.h"

namespace tokentap {

// A client request as it goes upstream.
struct ForwardedRequest {
  std::string_view method;
  std::string_view target;  // as the client sent it; upstream_target() maps it for the route
  const HeaderList& headers;
  std::string_view request_id;  // sent as config.request_id_header, the client's one dropped
  // The body was rewritten: the response must come back uncompressed for the observer.
  bool identity_encoding = false;
  // How the body is framed upstream: a Content-Length, else chunked, else no body.
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool chunked = false;
  // Lower-case names of client headers not forwarded, and whole "name: value\r\n" lines added
  // in their place (the header stages' edits: trace context).
  std::span<const std::string> drop{};
  std::string_view added_lines{};
};

// "METHOD target HTTP/1.1", Host the route's upstream authority, the client's end-to-end
// headers without Host, Expect, Content-Length, tokentap's own (request id, agent and
// session headers of `config`) and `drop`, then `added_lines`, the request id and the framing.
std::string upstream_request_head(const ForwardedRequest& request, const Route& route,
                                  const Config& config);

// An upstream response as it goes to the client.
struct ForwardedResponse {
  int status = 0;
  std::string_view reason;  // empty: the standard phrase for `status`
  const HeaderList& headers;
  std::string_view request_id_header;  // added with `request_id` unless the upstream sent it
  std::string_view request_id;
  bool drop_content_length = false;  // the body is rewritten: its length changes
  bool chunked = false;              // sent with transfer-encoding: chunked
  bool close = false;                // sent with connection: close
  // Lower-case names of upstream headers not forwarded, and lines added in their place.
  std::span<const std::string> drop{};
  std::string_view added_lines{};
};

std::string client_response_head(const ForwardedResponse& response);

}  // namespace tokentap

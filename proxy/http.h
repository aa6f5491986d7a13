// HTTP/1.1 helpers shared by the downstream and upstream sides: header classification,
// request-id handling, proxy error bodies and the llhttp settings contract.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/request_context.h"

namespace tokentap {

bool iequals(std::string_view a, std::string_view b);
std::string to_lower(std::string_view s);

// RFC 9110 §7.6.1 connection-specific fields plus the legacy ones proxies drop
// (Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-Authorization,
// Proxy-Authenticate). Names must be compared case-insensitively; this does it.
bool is_hop_by_hop(std::string_view name);

// Lower-cased, trimmed, non-empty elements of every `name` header's comma-separated list.
std::vector<std::string> list_tokens(const HeaderList& headers, std::string_view name);

// Lower-cased field names listed in every Connection header ("close", "keep-alive" included).
std::vector<std::string> connection_tokens(const HeaderList& headers);

// True if `name` is an RFC 9110 token (no whitespace, no separators, not empty).
bool is_token(std::string_view name);

// A client-supplied request id is kept when it is 1..128 visible ASCII characters.
bool is_sane_request_id(std::string_view id);

// Random UUIDv4, lower-case, 36 characters.
std::string uuid_v4(std::mt19937_64& rng);

// application/json, application/*+json, with or without parameters.
bool is_json_content_type(std::string_view content_type);

// Reason phrase for a status code ("" for unknown codes).
std::string_view status_reason(int status);

// {"error":{"type":"…","message":"…","request_id":"…"}}
std::string error_body(std::string_view type, std::string_view message,
                       std::string_view request_id);

// Serializes a complete proxy-generated response with a JSON body (headers only, with the
// body's Content-Length, when answering a HEAD request).
std::string error_response(int status, std::string_view type, std::string_view message,
                           std::string_view request_id, std::string_view request_id_header,
                           bool keep_alive, bool head_request = false);

// Splits "/a/b?x=1" into path "/a/b" and query "x=1" (no '?').
struct TargetParts {
  std::string_view path;
  std::string_view query;
  bool has_query = false;
};
TargetParts split_target(std::string_view target);

// Target sent upstream: base path + (target with `prefix` removed when strip_prefix).
std::string upstream_target(const Route& route, std::string_view target);

}  // namespace tokentap

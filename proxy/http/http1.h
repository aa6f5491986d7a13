// HTTP/1.1 helpers shared by the downstream and upstream sides: header classification,
// request-id handling, proxy error bodies and the llhttp settings contract.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/text.h"
#include "config/config.h"
#include "parsers/llm_facts.h"
#include "proxy/http/errors.h"
#include "proxy/http/headers.h"

namespace tokentap {

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

// The parser-side provider of a configured one; nullopt for auto_detect.
std::optional<ApiProvider> api_provider_for(Provider p);

// The body shape of an error tokentap answers itself: the provider's own, so the client's SDK
// parses it (and shows its message) as it would the provider's.
enum class ErrorShape { openai, anthropic, gemini };

// The shape the client of this request reads: the wire format of the route's endpoint (an
// OpenAI-compatible endpoint of Anthropic or Gemini answers in the OpenAI shape), detected from
// the path for auto_detect routes; the OpenAI shape when no route was chosen.
ErrorShape error_shape(const Route* route, std::string_view method, std::string_view target);

// Longest retry-after an SDK is left to wait out by itself; past it, x-should-retry: false.
inline constexpr int64_t kLongestRetryWait = 60;

// A refusal that lifts in `seconds` (at least 1 is sent): retry-after, and x-should-retry: false
// when that is longer than kLongestRetryWait.
RetryAdvice retry_after(int64_t seconds);

// An error tokentap answers itself. Status and name come from error_status() and
// error_type_name() of `type`; `message` must be secret-free.
struct ProxyError {
  ErrorType type = ErrorType::internal;
  std::string_view message{};
  std::string_view request_id{};
  std::optional<RetryAdvice> retry{};  // nullopt: retry_advice(type)
};

// The JSON body, in `shape`; every shape's "error" object carries "tokentap_error" (the name)
// and "request_id", and its message reads "tokentap <name>: <message>".
//   openai:    {"error":{"message","type","param":null,"code":<name>,...}}
//   anthropic: {"type":"error","error":{"type","message",...},"request_id"}
//   gemini:    {"error":{"code":<status>,"message","status",...,"details":[RetryInfo]}}
// with the provider's type/status vocabulary for the status (see README, "Errors").
std::string error_body(const ProxyError& error, ErrorShape shape);

// Serializes the complete response: status line, JSON content type and length, retry-after and
// x-should-retry as advised, the request id under `request_id_header`, `connection: close`
// unless keep_alive, and the body (headers only, with the body's Content-Length, when answering
// a HEAD request).
std::string error_response(const ProxyError& error, ErrorShape shape,
                           std::string_view request_id_header, bool keep_alive,
                           bool head_request = false);

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

// The error table: every failure class the proxy itself can answer with, its HTTP status, its
// error_type value, the stage it belongs to and the retry advice sent with it, and how a
// request's outcome is classified. Nothing else maps an ErrorType to one of these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "parsers/llm_facts.h"

namespace tokentap {

// The proxy's own failure classes. Each has one row in the error table (errors.cc):
// adding a class is adding its enumerator here (before `internal`, which stays last) and its
// row there (name, HTTP status, error_type value, stage, retry advice).
enum class ErrorType {
  none,
  bad_request,              // malformed HTTP from the client -> 400
  header_timeout,           // downstream headers too slow -> 408
  request_too_large,        // body over max_request_body -> 413
  headers_too_large,        // header bytes / count over limits -> 431
  overloaded,               // max_connections reached -> 503
  request_buffer_full,      // limits.max_buffered_request_bytes in use -> 503, retry later
  no_route,                 // no route matches -> 404
  upstream_connect_error,   // DNS/TCP -> 502
  upstream_tls_error,       // handshake or verification -> 502
  upstream_protocol_error,  // malformed upstream response -> 502
  upstream_reset,           // upstream closed mid-response (truncation made visible)
  timeout,                  // first byte / idle -> 504
  client_cancelled,         // downstream went away before the response ended
  shutting_down,            // drain deadline hit
  budget_exceeded,          // a blocking budget is used up -> 429, no upstream contact
  runaway_session,          // a session flagged runaway with action block -> 429
  circuit_open,             // the route's circuit breaker is open -> 503, no upstream contact
  internal,
};
inline constexpr size_t kErrorTypeCount = static_cast<size_t>(ErrorType::internal) + 1;

// Where a request failed: the client's side (downstream), tokentap's own limits and policies
// (proxy), the connection to the provider (upstream), or the provider's answer (provider).
enum class ErrorStage { none, downstream, proxy, upstream, provider };
const char* error_stage_name(ErrorStage s);  // "none", "downstream", ...

// What a client should do about an error, in the headers the SDKs read. `after_seconds` is sent
// as retry-after (the OpenAI, Anthropic and Vercel AI SDKs wait that long before their next try;
// the AI SDK only up to 60 s). `should_retry` is sent as x-should-retry, which the OpenAI and
// Anthropic SDKs obey over their default of retrying 408, 409, 429 and 5xx; the AI SDK ignores
// it and retries those statuses regardless.
struct RetryAdvice {
  std::optional<int64_t> after_seconds{};
  std::optional<bool> should_retry{};
};

struct ErrorTypeInfo {
  ErrorType type{};
  const char* name{};        // the proxy's class: the log's `proxy_error`, the error body's type
  int status{};              // the HTTP status tokentap answers with
  const char* error_type{};  // the error_type value of logs and metric labels (request_outcome)
  ErrorStage stage{};
  RetryAdvice retry;   // when nothing more is known about this error (see retry_advice)
  bool spent_quota{};  // a used-up quota: the provider words that clients do not retry
};
const ErrorTypeInfo& error_info(ErrorType e);
inline const char* error_type_name(ErrorType e) { return error_info(e).name; }
inline int error_status(ErrorType e) { return error_info(e).status; }
// The advice for an error kind when nothing more is known about it: overloaded and
// shutting_down retry after 1 s; upstream connect and TLS errors retry; a runaway session and a
// budget without a known wait do not; anything else leaves the SDK's own rules.
inline RetryAdvice retry_advice(ErrorType e) { return error_info(e).retry; }

// "Did this request fail, and why": one error_type value for the access log, every metric
// label, the usage store and /v1/errors. The proxy's own failure wins; else the provider's
// error class (in a non-2xx body or as an event inside a 200 stream); else, for a non-2xx
// status, the class of that status; else "none".
struct ErrorOutcome {
  std::string_view error_type = "none";
  ErrorStage stage = ErrorStage::none;
  bool failed() const { return stage != ErrorStage::none; }
};
ErrorOutcome request_outcome(ErrorType proxy_error, int status, ErrorClass provider_class);

}  // namespace tokentap

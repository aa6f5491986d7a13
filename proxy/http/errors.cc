#include "proxy/http/errors.h"

#include <iterator>

namespace tokentap {

namespace {

using S = ErrorStage;

constexpr RetryAdvice kSdkDecides{};
constexpr RetryAdvice kRetryIn1s{.after_seconds = 1, .should_retry = std::nullopt};
constexpr RetryAdvice kRetry{.after_seconds = std::nullopt, .should_retry = true};
constexpr RetryAdvice kDoNotRetry{.after_seconds = std::nullopt, .should_retry = false};

// One row per ErrorType, in enum order.
constexpr ErrorTypeInfo kErrorTable[] = {
    {ErrorType::none, "none", 200, "none", S::none, kSdkDecides, false},
    {ErrorType::bad_request, "bad_request", 400, "invalid_request", S::downstream, kSdkDecides,
     false},
    {ErrorType::header_timeout, "header_timeout", 408, "timeout", S::downstream, kSdkDecides,
     false},
    {ErrorType::request_too_large, "request_too_large", 413, "request_too_large", S::downstream,
     kSdkDecides, false},
    {ErrorType::headers_too_large, "headers_too_large", 431, "request_too_large", S::downstream,
     kSdkDecides, false},
    {ErrorType::overloaded, "overloaded", 503, "overloaded", S::proxy, kRetryIn1s, false},
    {ErrorType::request_buffer_full, "request_buffer_full", 503, "overloaded", S::proxy, kRetryIn1s,
     false},
    {ErrorType::no_route, "no_route", 404, "not_found", S::downstream, kSdkDecides, false},
    {ErrorType::upstream_connect_error, "upstream_connect_error", 502, "connect_error", S::upstream,
     kRetry, false},
    {ErrorType::upstream_tls_error, "upstream_tls_error", 502, "tls_error", S::upstream, kRetry,
     false},
    {ErrorType::upstream_protocol_error, "upstream_protocol_error", 502, "protocol_error",
     S::upstream, kSdkDecides, false},
    {ErrorType::upstream_reset, "upstream_reset", 502, "upstream_error", S::upstream, kSdkDecides,
     false},
    {ErrorType::timeout, "timeout", 504, "timeout", S::upstream, kSdkDecides, false},
    {ErrorType::client_cancelled, "client_cancelled", 499, "client_cancelled", S::downstream,
     kSdkDecides, false},
    {ErrorType::shutting_down, "shutting_down", 503, "shutting_down", S::proxy, kRetryIn1s, false},
    {ErrorType::budget_exceeded, "budget_exceeded", 429, "budget_exceeded", S::proxy, kDoNotRetry,
     true},
    {ErrorType::runaway_session, "runaway_session", 429, "runaway_session", S::proxy, kDoNotRetry,
     false},
    {ErrorType::circuit_open, "circuit_open", 503, "circuit_open", S::proxy, kRetryIn1s, false},
    {ErrorType::internal, "internal", 500, "internal", S::proxy, kSdkDecides, false},
};

constexpr bool error_table_complete() {
  if (std::size(kErrorTable) != kErrorTypeCount) return false;
  for (size_t i = 0; i < std::size(kErrorTable); ++i) {
    if (static_cast<size_t>(kErrorTable[i].type) != i || kErrorTable[i].name == nullptr ||
        kErrorTable[i].error_type == nullptr) {
      return false;
    }
  }
  return true;
}
static_assert(error_table_complete(), "kErrorTable needs one row per ErrorType, in enum order");

}  // namespace

const ErrorTypeInfo& error_info(ErrorType e) {
  size_t i = static_cast<size_t>(e);
  return i < std::size(kErrorTable) ? kErrorTable[i] : kErrorTable[kErrorTypeCount - 1];
}

const char* error_stage_name(ErrorStage s) {
  switch (s) {
    case ErrorStage::none:
      return "none";
    case ErrorStage::downstream:
      return "downstream";
    case ErrorStage::proxy:
      return "proxy";
    case ErrorStage::upstream:
      return "upstream";
    case ErrorStage::provider:
      return "provider";
  }
  return "none";
}

ErrorOutcome request_outcome(ErrorType proxy_error, int status, ErrorClass provider_class) {
  if (proxy_error != ErrorType::none) {
    const ErrorTypeInfo& info = error_info(proxy_error);
    return {info.error_type, info.stage};
  }
  if (provider_class == ErrorClass::none && status >= 400) {
    provider_class = classify_provider_error(status, ProviderError{});
  }
  if (provider_class != ErrorClass::none) {
    return {error_class_name(provider_class), ErrorStage::provider};
  }
  return {};
}

}  // namespace tokentap

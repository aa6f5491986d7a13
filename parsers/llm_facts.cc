#include "parsers/llm_facts.h"

#include <algorithm>

#include "common/text.h"

namespace tokentap {
namespace {

bool is_any_of(std::string_view value, std::initializer_list<std::string_view> candidates) {
  return std::find(candidates.begin(), candidates.end(), value) != candidates.end();
}

bool mentions_context_length(const ProviderError& e) {
  if (e.code == "context_length_exceeded" || e.type == "context_length_exceeded") return true;
  const std::string message = to_lower(e.message);
  for (std::string_view phrase :
       {"maximum context length", "prompt is too long", "context window",
        "exceeds the maximum number of tokens", "context_length_exceeded"}) {
    if (message.find(phrase) != std::string::npos) return true;
  }
  return false;
}

// Classifies by the provider's own vocabulary: Anthropic/OpenAI `type`, OpenAI `code`, Google
// canonical status names. Returns none when nothing is recognised.
ErrorClass classify_by_name(std::string_view name) {
  if (name.empty()) return ErrorClass::none;
  if (is_any_of(name, {"rate_limit_error", "rate_limit_exceeded", "RESOURCE_EXHAUSTED",
                       "insufficient_quota", "requests", "tokens"})) {
    return ErrorClass::rate_limited;
  }
  if (is_any_of(name, {"overloaded_error", "server_overloaded", "UNAVAILABLE"})) {
    return ErrorClass::overloaded;
  }
  if (is_any_of(name, {"authentication_error", "invalid_api_key", "UNAUTHENTICATED"})) {
    return ErrorClass::authentication;
  }
  if (is_any_of(name, {"permission_error", "PERMISSION_DENIED"})) {
    return ErrorClass::permission_denied;
  }
  if (is_any_of(name, {"not_found_error", "model_not_found", "NOT_FOUND"})) {
    return ErrorClass::not_found;
  }
  if (name == "request_too_large") return ErrorClass::request_too_large;
  if (name == "DEADLINE_EXCEEDED") return ErrorClass::timeout;
  if (is_any_of(name, {"invalid_request_error", "INVALID_ARGUMENT", "FAILED_PRECONDITION",
                       "OUT_OF_RANGE"})) {
    return ErrorClass::invalid_request;
  }
  if (is_any_of(name, {"api_error", "server_error", "INTERNAL"})) {
    return ErrorClass::upstream_error;
  }
  return ErrorClass::none;
}

ErrorClass classify_by_status(int status) {
  switch (status) {
    case 429:
      return ErrorClass::rate_limited;
    case 503:
    case 529:
      return ErrorClass::overloaded;
    case 401:
      return ErrorClass::authentication;
    case 403:
      return ErrorClass::permission_denied;
    case 404:
      return ErrorClass::not_found;
    case 413:
      return ErrorClass::request_too_large;
    case 408:
    case 504:
      return ErrorClass::timeout;
    default:
      break;
  }
  if (status >= 500) return ErrorClass::upstream_error;
  if (status >= 400) return ErrorClass::invalid_request;
  return ErrorClass::none;
}

}  // namespace

const char* api_provider_name(ApiProvider p) {
  switch (p) {
    case ApiProvider::openai:
      return "openai";
    case ApiProvider::azure_openai:
      return "azure_openai";
    case ApiProvider::openai_compatible:
      return "openai_compatible";
    case ApiProvider::anthropic:
      return "anthropic";
    case ApiProvider::gemini:
      return "gemini";
  }
  return "openai";
}

const char* operation_name(Operation op) {
  switch (op) {
    case Operation::other:
      return "other";
    case Operation::chat_completions:
      return "chat_completions";
    case Operation::completions:
      return "completions";
    case Operation::responses:
      return "responses";
    case Operation::embeddings:
      return "embeddings";
    case Operation::messages:
      return "messages";
    case Operation::count_tokens:
      return "count_tokens";
    case Operation::generate_content:
      return "generate_content";
    case Operation::embed_content:
      return "embed_content";
  }
  return "other";
}

const char* otel_operation_name(Operation op) {
  switch (op) {
    case Operation::chat_completions:
    case Operation::responses:
    case Operation::messages:
      return "chat";
    case Operation::completions:
      return "text_completion";
    case Operation::embeddings:
    case Operation::embed_content:
      return "embeddings";
    case Operation::generate_content:
      return "generate_content";
    case Operation::count_tokens:
    case Operation::other:
      break;
  }
  return "other";
}

const char* error_class_name(ErrorClass c) {
  switch (c) {
    case ErrorClass::none:
      return "none";
    case ErrorClass::rate_limited:
      return "rate_limited";
    case ErrorClass::overloaded:
      return "overloaded";
    case ErrorClass::context_length_exceeded:
      return "context_length_exceeded";
    case ErrorClass::invalid_request:
      return "invalid_request";
    case ErrorClass::authentication:
      return "authentication";
    case ErrorClass::permission_denied:
      return "permission_denied";
    case ErrorClass::not_found:
      return "not_found";
    case ErrorClass::request_too_large:
      return "request_too_large";
    case ErrorClass::timeout:
      return "timeout";
    case ErrorClass::upstream_error:
      return "upstream_error";
  }
  return "none";
}

ErrorClass classify_provider_error(int http_status, const ProviderError& error) {
  const bool failed_status = http_status >= 400;
  if (!failed_status && !error.present()) return ErrorClass::none;
  if (mentions_context_length(error)) return ErrorClass::context_length_exceeded;
  // OpenAI's `code` is the specific one ("invalid_api_key" under "invalid_request_error").
  if (ErrorClass c = classify_by_name(error.code); c != ErrorClass::none) return c;
  if (ErrorClass c = classify_by_name(error.type); c != ErrorClass::none) return c;
  if (failed_status) return classify_by_status(http_status);
  // An error event inside a successful stream that we cannot name more precisely.
  return ErrorClass::upstream_error;
}

const char* rate_limit_resource_name(RateLimitResource r) {
  switch (r) {
    case RateLimitResource::requests:
      return "requests";
    case RateLimitResource::tokens:
      return "tokens";
    case RateLimitResource::input_tokens:
      return "input_tokens";
    case RateLimitResource::output_tokens:
      return "output_tokens";
  }
  return "requests";
}

const char* parse_error_kind_name(ParseErrorKind k) {
  switch (k) {
    case ParseErrorKind::invalid_json:
      return "invalid_json";
    case ParseErrorKind::oversized:
      return "oversized";
    case ParseErrorKind::truncated:
      return "truncated";
    case ParseErrorKind::decode_error:
      return "decode_error";
    case ParseErrorKind::unsupported_encoding:
      return "unsupported_encoding";
    case ParseErrorKind::unexpected_shape:
      return "unexpected_shape";
    case ParseErrorKind::invalid_request:
      return "invalid_request";
    case ParseErrorKind::internal:
      return "internal";
  }
  return "internal";
}

uint32_t LlmFacts::parse_error_count() const {
  uint32_t total = 0;
  for (uint32_t n : parse_errors) total += n;
  return total;
}

}  // namespace tokentap

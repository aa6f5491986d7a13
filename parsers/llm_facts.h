// What one LLM API exchange tells us, as extracted by an LlmParser (parsers/llm_parser.h).
// Plain data with no behaviour beyond naming: the proxy copies what it needs into its
// metrics and access log once the request has ended.
//
// Token semantics, for every provider: `input` counts all billed input tokens including cache
// reads and writes, `output` counts all output tokens including reasoning; `cache_read`,
// `cache_write` and `reasoning` are subsets of those two.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

enum class ApiProvider : uint8_t { openai, azure_openai, openai_compatible, anthropic, gemini };
inline constexpr size_t kApiProviderCount = 5;
const char* api_provider_name(ApiProvider p);  // "openai", "azure_openai", ...

enum class Operation : uint8_t {
  other,             // not an API we meter (model listing, file upload, ...)
  chat_completions,  // OpenAI POST .../chat/completions
  completions,       // OpenAI legacy POST .../completions
  responses,         // OpenAI POST .../responses
  embeddings,        // OpenAI POST .../embeddings
  messages,          // Anthropic POST /v1/messages
  count_tokens,      // Anthropic /v1/messages/count_tokens, Gemini :countTokens (not billed)
  generate_content,  // Gemini :generateContent and :streamGenerateContent
  embed_content,     // Gemini :embedContent and :batchEmbedContents
};
const char* operation_name(Operation op);  // "chat_completions", ...
// The OpenTelemetry GenAI `gen_ai.operation.name` value: "chat", "text_completion",
// "embeddings", "generate_content", or "other".
const char* otel_operation_name(Operation op);

// `present` means the provider reported its final counts. When false the fields may still hold
// what a cut stream reported before it ended (e.g. Anthropic's input side from message_start).
//
// The counts after `reasoning` are further subsets the provider broke out and that some models
// price apart: audio and image tokens by modality (OpenAI *_tokens_details.audio_tokens /
// image_tokens, Gemini promptTokensDetails / candidatesTokensDetails), and Gemini's
// toolUsePromptTokenCount (input the provider's own tools fed back to the model). The two
// strings say under which terms the provider served the request, as it reported them (cleaned,
// at most kMaxUsageTermBytes): `service_tier` is OpenAI's and Anthropic's service_tier
// ("default", "flex", "priority", "scale"; "standard", "priority", "batch") or Gemini's
// serviceTier, else its Vertex AI trafficType ("ON_DEMAND", "PROVISIONED_THROUGHPUT");
// `inference_geo` is Anthropic's ("global", "us", "not_available"). Empty when not reported.
inline constexpr size_t kMaxUsageTermBytes = 32;
struct TokenUsage {
  bool present = false;
  uint64_t input = 0;
  uint64_t output = 0;
  uint64_t cache_read = 0;
  uint64_t cache_write = 0;     // every TTL: OpenAI cache_write_tokens, Anthropic 5m + 1h
  uint64_t cache_write_1h = 0;  // the part of cache_write with a 1-hour TTL (Anthropic)
  uint64_t reasoning = 0;
  uint64_t input_audio = 0;      // subset of input
  uint64_t input_image = 0;      // subset of input
  uint64_t output_audio = 0;     // subset of output
  uint64_t output_image = 0;     // subset of output
  uint64_t tool_use_prompt = 0;  // subset of input (Gemini)
  std::string service_tier{};    // {}: designated initializers may leave it out
  std::string inference_geo{};
};

// Who runs a tool the model called. `function`: the response hands the call to the client,
// which runs it and sends the result back in its next request (functions and custom tools, and
// client-side built-ins such as OpenAI computer use and local shell). `server`: the provider ran
// it inside this request (OpenAI web_search, file_search, code_interpreter, mcp_call...;
// Anthropic server_tool_use and mcp_tool_use; Gemini code execution).
enum class ToolKind : uint8_t { function, server };
inline const char* tool_kind_name(ToolKind k) {
  return k == ToolKind::server ? "server" : "function";
}

struct ToolCallCount {
  std::string name;
  uint32_t count = 0;
  ToolKind kind = ToolKind::function;
};

// Tool results the client sent back in the newest user turn (Anthropic `tool_result` blocks).
struct ToolResultCount {
  std::string tool;  // resolved from the matching tool_use id; "unknown" when not in the request
  bool is_error = false;
  uint32_t count = 0;
};
inline const char* tool_result_status(const ToolResultCount& r) {
  return r.is_error ? "error" : "success";
}

// A tool call a response hands the client to run (kind `function`): its id (Gemini may give
// none), the tool's name (cleaned), and a hash of its arguments as the response carried them
// (for spotting the same call repeated; see hash_tool_arguments). Results come back in a later
// request (parsers/tool_results.h).
struct ToolCallRef {
  std::string call_id;
  std::string name;
  uint64_t arguments_hash = 0;
};
// A tool result a request carries in its newest turn (parsers/tool_results.h).
struct ToolResultRef {
  std::string call_id;  // cleaned, at most kMaxToolRefBytes; "" when the format gave none
  std::string name;     // Gemini's functionResponse.name; Anthropic's tool_use name from the
                        // request history when it has one; "" otherwise
  bool is_error = false;
};
inline constexpr size_t kMaxToolCallRefs = 64;    // per response; later calls are not kept
inline constexpr size_t kMaxToolResultRefs = 64;  // per request; later ones are dropped
inline constexpr size_t kMaxToolRefBytes = 128;

// FNV-1a over argument text, fed in pieces as a stream delivers them.
inline constexpr uint64_t kToolArgumentsHashSeed = 14695981039346656037ull;
inline uint64_t hash_tool_arguments(uint64_t hash, std::string_view text) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

// An error the provider reported, in the body of a non-2xx response or as an in-stream event.
struct ProviderError {
  int http_status = 0;  // status of the response that carried it
  std::string type;     // e.g. "rate_limit_error", "invalid_request_error", "RESOURCE_EXHAUSTED"
  std::string code;     // e.g. "context_length_exceeded", "429"
  std::string message;  // control characters replaced, key-like tokens redacted, <= 256 bytes
  bool present() const { return !type.empty() || !code.empty() || !message.empty(); }
};

// The error_type label values a provider error maps to (a subset of the proxy's list).
enum class ErrorClass : uint8_t {
  none,
  rate_limited,
  overloaded,
  context_length_exceeded,
  invalid_request,
  authentication,
  permission_denied,
  not_found,
  request_too_large,
  timeout,
  upstream_error,
};
const char* error_class_name(ErrorClass c);  // "none", "rate_limited", ...
// Classifies from the HTTP status and the provider's own type/code/message.
ErrorClass classify_provider_error(int http_status, const ProviderError& error);

enum class RateLimitResource : uint8_t { requests, tokens, input_tokens, output_tokens };
inline constexpr size_t kRateLimitResourceCount = 4;
const char* rate_limit_resource_name(RateLimitResource r);  // "requests", ...

// One provider rate-limit window from response headers; -1 when the header was absent.
struct RateLimit {
  int64_t limit = -1;
  int64_t remaining = -1;
  int64_t reset_ms = -1;  // only when given as a duration (OpenAI "6m0s"); Anthropic sends a date
};

enum class ParseErrorKind : uint8_t {
  invalid_json,          // a JSON body, event or array element did not parse
  oversized,             // a JSON value we needed exceeded ParserLimits::max_json_bytes
  truncated,             // the body ended inside an event, a JSON value or a compressed stream
  decode_error,          // gzip/deflate/br data was corrupt
  unsupported_encoding,  // a Content-Encoding we cannot decode
  unexpected_shape,      // valid JSON, but not the shape this API documents
  invalid_request,       // the request body was not a JSON object
  internal,              // an exception inside the parser (e.g. allocation failure)
};
inline constexpr size_t kParseErrorKindCount = 8;
const char* parse_error_kind_name(ParseErrorKind k);  // label value for llm_parse_errors_total

struct LlmFacts {
  ApiProvider provider = ApiProvider::openai;
  Operation operation = Operation::other;
  std::string requested_model;  // request body; Gemini URL path; Azure deployment
  std::string response_model;   // what the provider says answered (e.g. a dated snapshot)
  bool stream = false;
  bool stream_options_present = false;   // the request had stream_options (OpenAI)
  bool include_usage_requested = false;  // ... with include_usage: true

  TokenUsage usage;
  // The API does not report usage in this response, by design: Gemini's embedContent and
  // batchEmbedContents, and an OpenAI background response answered while still queued or
  // in_progress (its usage comes with a later retrieval). Missing usage is expected then.
  bool usage_not_reported_by_api = false;
  std::string finish_reason;  // provider's own spelling: "stop", "end_turn", "STOP", ...
  std::vector<ToolCallCount> tool_calls;      // by (name, kind), in order of first appearance
  std::vector<ToolResultCount> tool_results;  // in order of first appearance
  // The calls of kind `function` the response hands the client (at most kMaxToolCallRefs),
  // and the results the request carries in its newest turn (at most kMaxToolResultRefs).
  std::vector<ToolCallRef> tool_call_refs;
  std::vector<ToolResultRef> tool_result_refs;

  int http_status = 0;
  ProviderError error;
  ErrorClass error_class = ErrorClass::none;  // set by finish()

  std::string upstream_request_id;  // x-request-id / request-id / apim-request-id
  std::array<RateLimit, kRateLimitResourceCount> rate_limits{};
  int64_t retry_after_ms = -1;  // retry-after-ms, or retry-after in seconds; -1 when absent

  // The response reached its documented end ([DONE], message_stop, response.completed, a
  // closed JSON body or array). False for a stream cut short between events.
  bool response_complete = false;
  uint32_t content_events = 0;  // stream events that carried generated content

  // What a cut stream's usage can be estimated from (parsers/usage_estimate.h): the bytes of
  // text in the request body (prompt_text_bytes()) and the UTF-8 bytes of generated text,
  // thinking and tool-call arguments received in stream events so far.
  uint64_t request_text_bytes = 0;
  uint64_t generated_text_bytes = 0;

  std::array<uint32_t, kParseErrorKindCount> parse_errors{};

  const RateLimit& rate_limit(RateLimitResource r) const {
    return rate_limits[static_cast<size_t>(r)];
  }
  uint32_t parse_error_count() const;
};

}  // namespace tokentap

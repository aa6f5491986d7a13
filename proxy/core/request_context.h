// One RequestContext per proxied request: every fact about the request lands here, and the
// access log line and the metrics are derived from it once, when the request ends.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "parsers/content_capture.h"
#include "parsers/llm_facts.h"
#include "proxy/http/errors.h"
#include "proxy/http/headers.h"

namespace tokentap {

using Clock = std::chrono::steady_clock;

// A tool result the request carried (every provider, see parsers/tool_results.h), matched to
// the call an earlier response of the same agent asked for: the tool's name ("unknown" when no
// call matched and the format does not name it) and the agent's time running the tool, from
// the end of that response to the arrival of this request (-1 when unmatched).
struct ToolResultOutcome {
  std::string tool;
  bool is_error = false;
  double seconds = -1;
};
inline const char* tool_result_status(const ToolResultOutcome& r) {
  return r.is_error ? "error" : "success";
}

// What an LLM request was billed and what the provider reported, computed once when it ends
// (by the metering observer); the access log, the llm_* metrics, the usage store, the session
// and budget records and /v1/errors all read these values, so they cannot disagree.
struct LlmSummary {
  bool metered = false;  // false: not an LLM API request (or not parsed); the rest is empty
  ApiProvider api = ApiProvider::openai;
  std::string provider;  // api_provider_name(api)
  Operation api_operation = Operation::other;
  std::string operation;  // operation_name(api_operation)
  std::string model;      // requested, else the response model, else "unknown"
  std::string response_model;
  bool stream = false;
  // Billed tokens. Without final usage (`billed.present` false) a successful request is billed
  // what parsers/usage_estimate.h makes of it: the exact counts the stream carried before it
  // ended, completed by estimates (`estimated_input`, `estimated_output` say how many).
  TokenUsage billed;
  // "reported", "partial" (exact counts completed by estimates), "estimated", "missing"
  // (nothing to count from) or "none" (not a billable success).
  std::string_view usage_source = "none";
  std::string_view usage_missing_reason;  // why the provider's usage did not arrive
  uint64_t estimated_input = 0;           // the estimated part of billed.input
  uint64_t estimated_output = 0;          // the estimated part of billed.output
  // Cost of `billed`; meaningful when `priced`. `unpriced`: tokens billed, but no price for the
  // model, or for the service tier or region it was served under (`unpriced_reason`); such a
  // request is never priced at the standard rate.
  bool priced = false;
  bool unpriced = false;
  int64_t nano_usd = 0;
  // What cache reads saved against the uncached input price (>= 0), and what cache writes
  // cost above it (>= 0), at the prices applied; the net saving is their difference.
  int64_t cache_read_savings_nano_usd = 0;
  int64_t cache_write_premium_nano_usd = 0;
  std::string priced_as;
  std::string pricing_version;  // set when the request was priced or found unpriced
  // The price line and adjustments applied, e.g. "gpt-5:priority+long_context_272k" (see
  // pricing::CostResult::pricing_rule); also set when the tier or region had no price.
  std::string pricing_rule;
  std::string_view unpriced_reason;  // with `unpriced`: "unknown_model", "unknown_service_tier"...
  std::string service_tier;          // as the provider reported it; "" when not reported
  ErrorClass provider_error_class = ErrorClass::none;
  ProviderError provider_error;
  double ttft_seconds = -1;  // streams with content only
  // Streams with more than one output token: time between the first and the last content
  // event per output token after the first.
  double tpot_seconds = -1;

  // As the provider reported them (see LlmFacts).
  std::string finish_reason;
  std::vector<ToolCallCount> tool_calls;        // by (name, kind), in order of first appearance
  std::vector<ToolResultOutcome> tool_results;  // one per result, in order (bounded)
  std::vector<ToolCallRef> tool_call_refs;      // the calls the response hands the client
  std::array<RateLimit, kRateLimitResourceCount> rate_limits{};
  std::array<uint32_t, kParseErrorKindCount> parse_errors{};
  uint32_t parse_error_count = 0;   // the sum of parse_errors
  bool stream_usage_added = false;  // tokentap added stream_options.include_usage
};

// The W3C trace identity of a request, decided by a header stage when its head arrived
// (proxy/tracing). The core only carries it from that stage to the completion sinks.
struct RequestTrace {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  std::optional<std::array<uint8_t, 8>> parent_span_id;
  std::optional<bool> parent_sampled;  // the incoming sampled flag, when a traceparent came in
  std::string tracestate;              // bounded, carried through unchanged
  // The keep decision taken when the head arrived (the parent's flag, else the ratio draw); a
  // failed request may still be kept at the end. Empty: drawn at the end.
  std::optional<bool> head_sampled;
};

struct RequestContext {
  // Identity and routing.
  std::string request_id;           // ours (kept from the client when sane)
  std::string upstream_request_id;  // provider's x-request-id / request-id, if any
  std::string agent;
  std::string session;
  std::string key_id;  // first 8 hex of SHA-256 of the API key; "" when none
  std::string client_address;
  const Route* route = nullptr;
  std::string method;
  std::string path;           // as received, with any ?key= value redacted
  std::string upstream_path;  // path sent upstream (redacted the same way)
  bool request_is_json = false;

  // Outcome.
  int status = 0;  // status sent to the client (0 if nothing was sent)
  int upstream_status = 0;
  ErrorType error = ErrorType::none;
  std::string error_detail;  // short, secret-free, for the log

  // Sizes: body bytes as seen on the wire, after de-chunking.
  uint64_t request_body_bytes = 0;   // bytes_in
  uint64_t response_body_bytes = 0;  // bytes_out

  // Timing.
  Clock::time_point start;
  Clock::time_point upstream_connected;   // zero if never
  Clock::time_point first_response_byte;  // zero if never
  Clock::time_point end;
  // Wall-clock time the request ended (for log and record timestamps); set with `end`.
  std::chrono::system_clock::time_point wall_end;
  bool reused_connection = false;

  // Billed facts of an LLM request, filled by the metering observer's on_complete().
  LlmSummary llm;
  // Set by the tracing header stage; empty when tracing is off or the request never got a route.
  std::optional<RequestTrace> trace;
  // Content capture for the trace: set by the tracing header stage to the byte cap per side
  // when the request's span captures content (0: off); the metering observer's parser then
  // fills `content` (with the parser's facts, in on_complete).
  size_t capture_content_bytes = 0;
  std::shared_ptr<const CapturedContent> content;

  ErrorOutcome outcome() const { return request_outcome(error, status, llm.provider_error_class); }

  double duration_ms() const {
    return std::chrono::duration<double, std::milli>(end - start).count();
  }
};

// Observe-only hook: told about each stage of a request, never changes bytes on the wire.
// One observer instance per routed request, created by an ObserverFactory as soon as the route
// is known (before any refusal: a 413, a budget or runaway refusal), called on the worker's
// loop thread. on_complete() is called exactly once per such request, whatever the outcome,
// before the access log line is written.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void on_request_headers(RequestContext&, const HeaderList&) {}
  // The whole body for buffered (JSON) requests, or each chunk for streamed ones.
  virtual void on_request_body(RequestContext&, std::string_view) {}
  virtual void on_response_headers(RequestContext&, int /*status*/, const HeaderList&) {}
  // De-chunked body bytes in arrival order (still content-encoded if the upstream compressed).
  virtual void on_response_body(RequestContext&, std::string_view) {}
  virtual void on_complete(RequestContext&) {}

  // The one sanctioned change to bytes on the wire (see parsers/stream_options.h), as a pair:
  // replace_request_body() may return a new buffered JSON body to forward instead of the
  // client's (the proxy then also asks the upstream for an identity-encoded response), and
  // when filters_response() is true after on_response_headers(), the response body the client
  // receives is what filter_response() / finish_response_filter() produce instead of the
  // upstream's bytes. on_response_body() always sees the upstream's bytes.
  virtual std::optional<std::string> replace_request_body(RequestContext&, std::string_view) {
    return std::nullopt;
  }
  virtual bool filters_response() const { return false; }
  virtual void filter_response(std::string_view in, std::string& out) { out.append(in); }
  virtual void finish_response_filter(std::string& /*out*/) {}
};

}  // namespace tokentap

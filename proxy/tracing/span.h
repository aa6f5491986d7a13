// One OpenTelemetry CLIENT span per finished LLM request, and its OTLP/HTTP JSON encoding
// (opentelemetry-proto JSON mapping: ids as lower-case hex, enums as integers, 64-bit integers
// as decimal strings). Attribute names follow the GenAI semantic conventions v1.37.0
// (gen_ai.provider.name, gen_ai.usage.*). With content capture, the prompt and completion are
// the v1.37.0 span attributes gen_ai.system_instructions, gen_ai.input.messages and
// gen_ai.output.messages (JSON strings; see content_attributes.h), not the separate
// gen_ai.client.inference.operation.details event. Pure.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/request_context.h"
#include "proxy/tracing/trace_context.h"

namespace tokentap {

inline constexpr std::string_view kGenAiSemconvVersion = "1.37.0";
inline constexpr std::string_view kSchemaUrl = "https://opentelemetry.io/schemas/1.37.0";

// RequestTrace (proxy/core/request_context.h) is the trace identity of one request: a fresh
// trace, or the caller's trace when a valid traceparent came in.
RequestTrace new_request_trace(IdGenerator& ids, const std::optional<TraceParent>& incoming,
                               std::string_view incoming_tracestate);

// A finished span, already in OTLP JSON form (the `spans[]` element).
struct SpanRecord {
  nlohmann::json json;
  bool failed = false;
};

// The span for a finished request. Start time in Unix nanoseconds is wall_end - duration.
SpanRecord build_span(const RequestContext& ctx, const RequestTrace& trace);

// The ExportTraceServiceRequest body for a batch of spans of one service.
// `resource` adds resource attributes (OTEL_RESOURCE_ATTRIBUTES, k8s.pod.name, ...).
std::string otlp_request_body(
    const std::vector<nlohmann::json>& spans, std::string_view service_name,
    const std::vector<std::pair<std::string, std::string>>& resource = {});

// OTLP AnyValue helpers.
nlohmann::json otlp_attr(std::string_view key, std::string_view value);
nlohmann::json otlp_attr(std::string_view key, int64_t value);
nlohmann::json otlp_attr(std::string_view key, double value);
nlohmann::json otlp_attr_bool(std::string_view key, bool value);

// gen_ai.operation.name for tokentap's operation name ("chat_completions" -> "chat").
std::string_view otel_operation(std::string_view tokentap_operation);
// gen_ai.provider.name for tokentap's provider name ("gemini" -> "gcp.gemini").
std::string_view otel_provider(std::string_view tokentap_provider);

}  // namespace tokentap

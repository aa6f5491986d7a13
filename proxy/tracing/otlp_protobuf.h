// OTLP/HTTP protobuf bodies from the OTLP JSON form tokentap builds (proxy/tracing/span.h): a
// protobuf wire-format writer (varints, length-delimited fields, fixed32/fixed64) and the
// ExportTraceServiceRequest messages. Field numbers are opentelemetry-proto's trace.proto,
// common.proto, resource.proto and trace_service.proto, as generated into
// @opentelemetry/otlp-transformer 0.216.0 (build/src/generated/root.js), the definitions the
// tests decode with. Pure functions; JSON members of an unexpected type are left out, never
// thrown about (the input is tokentap's own).
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

namespace tokentap {

// One OTLP JSON Span (a `spans[]` element: hex ids, decimal-string nanoseconds, AnyValue
// attributes of every kind, events, links, status, flags) as the bytes of a Span message,
// without its own tag and length.
std::string otlp_span_protobuf(const nlohmann::json& span);

// An OTLP JSON ExportTraceServiceRequest as protobuf. `encoded_spans` (from otlp_span_protobuf)
// are appended to the first ScopeSpans of the first ResourceSpans, after the spans `request`
// itself holds: the exporter encodes each span once, when it is queued.
std::string otlp_request_protobuf(const nlohmann::json& request,
                                  std::span<const std::string> encoded_spans = {});

// Protobuf wire-format primitives (https://protobuf.dev/programming-guides/encoding/), appended
// to `out`.
namespace protowire {
void varint(std::string& out, uint64_t value);
void tag(std::string& out, uint32_t field, uint32_t wire_type);
void bytes_field(std::string& out, uint32_t field, std::string_view bytes);
void varint_field(std::string& out, uint32_t field, uint64_t value);
void fixed64_field(std::string& out, uint32_t field, uint64_t value);
void fixed32_field(std::string& out, uint32_t field, uint32_t value);
}  // namespace protowire

}  // namespace tokentap

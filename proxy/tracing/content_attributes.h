// The captured prompt and completion of a request as span attributes, per the OpenTelemetry
// GenAI semantic conventions v1.37.0 for inference spans (all Opt-In): gen_ai.system_instructions
// (an array of parts), gen_ai.input.messages and gen_ai.output.messages (arrays of
// {role, parts, finish_reason}; parts typed text, reasoning, tool_call, tool_call_response),
// each a JSON string (the conventions allow it where structured values are not supported).
// Every string first goes through the PII scrubber. Each side (system instructions and input
// messages together; output messages) serializes to at most `max_bytes`: what does not fit is
// cut at a UTF-8 boundary with kTruncatedMark or left out, and `tokentap.content.truncated` is
// true. Pure.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "parsers/content_capture.h"
#include "proxy/tracing/pii.h"

namespace tokentap {

// Appends the content attributes to `attributes` (an OTLP attribute array). `finish_reason`
// fills the output messages that did not carry their own.
void add_content_attributes(const CapturedContent& content, std::string_view finish_reason,
                            const PiiScrubber& scrubber, size_t max_bytes, PiiCounts& counts,
                            nlohmann::json& attributes);

// `items` (a JSON array) cut so that it serializes to at most `room` bytes: leading elements
// are kept whole, the first one that does not fit is cut (message parts' text, arguments or
// responses) or dropped, the rest dropped. Returns true when anything was cut.
bool fit_json_array(nlohmann::json& items, size_t room);

}  // namespace tokentap

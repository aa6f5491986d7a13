// The tool results a request carries in its newest turn: the answers to the tool calls of the
// previous response, which the agent ran in between (issue 15: tool execution time and
// outcome). Pure: a function of the request body, no I/O, no clock, never throws. The parsers
// fill LlmFacts::tool_result_refs with it; proxy/metering matches the ids to the calls earlier
// responses asked for (PendingToolCalls).
//
// Only the newest turn counts, so that a result is seen once however long the conversation
// grows: OpenAI chat, the trailing `role: "tool"` messages (`tool_call_id`); Responses, the
// trailing `function_call_output` / `custom_tool_call_output` items of `input` (`call_id`);
// Anthropic, the `tool_result` blocks (`tool_use_id`, `is_error`) of the last message when it
// is the user's; Gemini, the `functionResponse` parts (`id` if present, and `name`) of the last
// content when it is not the model's.
//
// is_error: Anthropic's `is_error: true`; a Gemini functionResponse whose `response` has an
// `error` key; an OpenAI result whose content (a string) is a JSON object with a top-level
// `error` key. Everything else is a success.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/llm_facts.h"

namespace tokentap {

// In order of appearance. Empty for a body that is not JSON or an operation without tools.
std::vector<ToolResultRef> newest_tool_results(ApiProvider provider, Operation operation,
                                               std::string_view body);

// Whether a string of a request body, as json_util::for_each_string() hands it over, is one only
// a tool result carries: OpenAI's `tool_call_id` key or a `*_call_output` item type, Gemini's
// `functionResponse` key. A body without one has no results to look for. Anthropic: always
// false (its parser reads the newest message's blocks while it reads the request anyway).
bool marks_tool_result(ApiProvider provider, std::string_view raw, bool is_key);

}  // namespace tokentap

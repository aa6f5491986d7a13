// What a request used when its response ended before the provider reported usage: a client
// cancel, an upstream error or a truncated stream. The provider bills such requests, so they
// are counted from what is known instead of as zero:
//   - exact counts the stream already carried: Anthropic's message_start (input, cache reads
//     and writes by TTL), Gemini's running usageMetadata (every chunk has the counts so far);
//   - output estimated from the generated text, thinking and tool-call arguments received
//     (LlmFacts::generated_text_bytes), when no running count covers it;
//   - input estimated from the text of the request body (LlmFacts::request_text_bytes), when
//     no exact input count arrived (OpenAI, Gemini cut before its first chunk).
// An estimate is ceil(bytes / kEstimateBytesPerToken); pricing/README.md records the rule's
// measured error on the golden recordings. Pure functions: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string_view>

#include "parsers/llm_facts.h"

namespace tokentap {

inline constexpr uint64_t kEstimateBytesPerToken = 4;

// `reported`: final usage from the provider. `partial`: usage completed by estimation, with at
// least one exact count from the stream. `estimated`: every count estimated. `missing`: nothing
// to count from (no request text, no content, no counts).
enum class UsageSource : uint8_t { reported, partial, estimated, missing };
const char* usage_source_name(UsageSource s);  // "reported", "partial", "estimated", "missing"

struct UsageEstimate {
  TokenUsage usage;  // usage.present is false unless source is `reported`
  UsageSource source = UsageSource::missing;
  uint64_t estimated_input = 0;   // the part of usage.input that was estimated
  uint64_t estimated_output = 0;  // the part of usage.output that was estimated
};

// The usage to bill for an ended request whose parser is `facts`. Returns facts.usage unchanged
// (source `reported`) when the provider reported final usage.
UsageEstimate estimate_usage(const LlmFacts& facts);

// Tokens estimated from `bytes` of text: ceil(bytes / kEstimateBytesPerToken).
uint64_t estimate_tokens(uint64_t bytes);

// The bytes of text in a JSON request body that the model reads as its prompt: every string
// value, except the model name and values that carry media rather than text (keys "data",
// "url", "image_url", "file_data", "b64_json", a "data:" URI, or a string over 1 KiB without a
// space, i.e. base64). Escapes count as written. Scans once without allocating; a malformed
// body counts what precedes the damage.
uint64_t prompt_text_bytes(std::string_view json_body);

// prompt_text_bytes() fed one string at a time by json_util::for_each_string(), for a caller
// that runs other questions in the same pass over the body.
class PromptTextCounter {
 public:
  void add(std::string_view raw, bool is_key);
  uint64_t bytes() const { return bytes_; }

 private:
  std::string_view key_;  // the most recent object key: the value's (or its array's) name
  uint64_t bytes_ = 0;
};

}  // namespace tokentap

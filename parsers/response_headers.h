// Response headers that carry metering facts: the upstream request id, OpenAI x-ratelimit-*,
// Anthropic anthropic-ratelimit-*, retry-after and retry-after-ms.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "parsers/llm_facts.h"

namespace tokentap {

// Reads one response's headers, one at a time, into LlmFacts. Names are matched
// case-insensitively; other headers and unparseable values are ignored. When several request-id
// headers are present x-request-id wins over request-id over apim-request-id, and
// retry-after-ms wins over retry-after, whatever their order.
class ResponseHeaderReader {
 public:
  void read(std::string_view name, std::string_view value, LlmFacts& facts);

 private:
  int request_id_rank_ = 0;
  bool retry_after_ms_seen_ = false;
};

// OpenAI's reset durations ("20ms", "1s", "6m0s", "1h30m2.5s") in milliseconds.
std::optional<int64_t> parse_reset_duration(std::string_view text);

}  // namespace tokentap

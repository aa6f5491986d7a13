#include "parsers/usage_estimate.h"

#include <algorithm>

#include "parsers/json_strings.h"

namespace tokentap {
namespace {

constexpr size_t kMaxTextWithoutSpace = 1024;

bool is_media_key(std::string_view key) {
  return key == "data" || key == "url" || key == "image_url" || key == "file_data" ||
         key == "b64_json" || key == "model";
}

bool looks_like_media(std::string_view value) {
  if (value.starts_with("data:")) return true;
  return value.size() > kMaxTextWithoutSpace && value.find(' ') == std::string_view::npos;
}

}  // namespace

const char* usage_source_name(UsageSource s) {
  switch (s) {
    case UsageSource::reported:
      return "reported";
    case UsageSource::partial:
      return "partial";
    case UsageSource::estimated:
      return "estimated";
    case UsageSource::missing:
      break;
  }
  return "missing";
}

uint64_t estimate_tokens(uint64_t bytes) {
  return bytes / kEstimateBytesPerToken + (bytes % kEstimateBytesPerToken != 0 ? 1 : 0);
}

void PromptTextCounter::add(std::string_view raw, bool is_key) {
  if (is_key) {
    key_ = raw;
  } else if (!is_media_key(key_) && !looks_like_media(raw)) {
    bytes_ += raw.size();
  }
}

uint64_t prompt_text_bytes(std::string_view body) {
  PromptTextCounter counter;
  json_util::for_each_string(body,
                             [&](std::string_view raw, bool is_key) { counter.add(raw, is_key); });
  return counter.bytes();
}

UsageEstimate estimate_usage(const LlmFacts& f) {
  UsageEstimate e;
  e.usage = f.usage;
  if (f.usage.present) {
    e.source = UsageSource::reported;
    return e;
  }
  TokenUsage& u = e.usage;
  const uint64_t generated = estimate_tokens(f.generated_text_bytes);
  bool exact = false;
  if (f.provider == ApiProvider::anthropic && u.input > 0) {
    // message_start's input side is final; its output_tokens is a placeholder (usually 1).
    exact = true;
    u.output = std::max(u.output, generated);
    e.estimated_output = u.output;
  } else if (f.provider == ApiProvider::gemini && (u.input > 0 || u.output > 0)) {
    exact = true;  // the last chunk's running counts cover everything received
  } else {
    u = TokenUsage{};
    u.service_tier = f.usage.service_tier;
    u.inference_geo = f.usage.inference_geo;
    u.input = estimate_tokens(f.request_text_bytes);
    u.output = generated;
    e.estimated_input = u.input;
    e.estimated_output = u.output;
  }
  u.present = false;
  u.reasoning = std::min(u.reasoning, u.output);
  if (exact) {
    e.source = UsageSource::partial;
  } else if (u.input + u.output > 0) {
    e.source = UsageSource::estimated;
  }
  return e;
}

}  // namespace tokentap

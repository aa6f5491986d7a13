// Gemini API (generativelanguage.googleapis.com and Vertex AI): generateContent,
// streamGenerateContent as SSE (alt=sse) or as the default streamed JSON array, embedContent,
// batchEmbedContents and countTokens. Every body, event and array element is a
// GenerateContentResponse-shaped object, or {"error": {code, message, status}}.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parsers/json_util.h"
#include "parsers/provider_parsers.h"

namespace tokentap {
namespace {

using json_util::array_member;
using json_util::as_string;
using json_util::count_member;
using json_util::member;
using json_util::object_member;
using json_util::string_member;
using Json = nlohmann::json;

class GeminiParser final : public LlmParser {
 public:
  GeminiParser(const Endpoint& endpoint, const ParserLimits& limits)
      : LlmParser(endpoint, limits) {}

 private:
  // The model and the stream flag come from the URL; nothing in the body is needed.
  void parse_request(std::string_view) override {}

  bool wants_member(std::string_view key) const override {
    return key == "candidates" || key == "usageMetadata" || key == "modelVersion" ||
           key == "promptFeedback" || key == "error";
  }

  void on_member(std::string_view key, const Json& value) override { apply_member(key, value); }

  void on_event(std::string_view, const Json& data) override {
    if (!data.is_object()) {
      count_parse_error(ParseErrorKind::unexpected_shape);
      return;
    }
    bool content = false;
    for (const auto& [key, value] : data.items()) content = apply_member(key, value) || content;
    if (content) note_content();
  }

  void on_end() override {
    if (facts().finish_reason.empty()) set_finish_reason(block_reason_);
    const bool ended = finished_ || !block_reason_.empty();
    if (ended && is_sse()) mark_complete();  // SSE has no end marker: the last chunk says it
    if (!usage_) return;
    TokenUsage& u = mutable_facts().usage;
    u = *usage_;
    // Every chunk of a stream carries the counts so far; only the last one is final.
    u.present = !facts().stream || ended;
  }

  // Returns true when the member carried generated content.
  bool apply_member(std::string_view key, const Json& value) {
    if (key == "candidates") {
      return value.is_array() && apply_candidates(value);
    }
    if (key == "usageMetadata") {
      if (endpoint().operation != Operation::count_tokens) apply_usage(value);
    } else if (key == "modelVersion") {
      std::string_view model = as_string(value);
      if (model.substr(0, 7) == "models/") model.remove_prefix(7);
      set_response_model(model);
    } else if (key == "promptFeedback") {
      block_reason_.assign(string_member(value, "blockReason").substr(0, 64));
    } else if (key == "error") {
      if (value.is_object()) {
        std::string code;
        if (const Json* c = member(value, "code"); c != nullptr && c->is_number()) {
          code = c->dump();
        }
        set_error(string_member(value, "status"), code, string_member(value, "message"));
      }
    }
    return false;
  }

  bool apply_candidates(const Json& candidates) {
    bool content = false;
    for (const Json& candidate : candidates) {
      const uint64_t index = count_member(candidate, "index").value_or(0);
      const std::string_view reason = string_member(candidate, "finishReason");
      if (!reason.empty()) {
        finished_ = true;
        if (index == 0 || facts().finish_reason.empty()) set_finish_reason(reason);
      }
      const Json* candidate_content = object_member(candidate, "content");
      const Json* parts =
          candidate_content != nullptr ? array_member(*candidate_content, "parts") : nullptr;
      if (parts == nullptr) continue;
      for (const Json& part : *parts) {
        if (const Json* call = object_member(part, "functionCall")) {
          add_tool_call(string_member(*call, "name"));
          content = true;
        } else if (object_member(part, "executableCode") != nullptr) {
          add_tool_call("code_execution");
          content = true;
        } else if (!string_member(part, "text").empty() ||
                   object_member(part, "inlineData") != nullptr) {
          content = true;
        }
      }
    }
    return content;
  }

  // promptTokenCount already includes cachedContentTokenCount; candidatesTokenCount excludes
  // thoughtsTokenCount, and toolUsePromptTokenCount is billed as input on top of the prompt.
  void apply_usage(const Json& usage) {
    if (!usage.is_object()) return;
    const auto prompt = count_member(usage, "promptTokenCount");
    const auto candidates = count_member(usage, "candidatesTokenCount");
    const auto thoughts = count_member(usage, "thoughtsTokenCount");
    if (!prompt && !candidates && !thoughts) return;
    TokenUsage u;
    u.cache_read = count_member(usage, "cachedContentTokenCount").value_or(0);
    u.input = prompt.value_or(0) + count_member(usage, "toolUsePromptTokenCount").value_or(0);
    u.reasoning = thoughts.value_or(0);
    u.output = candidates.value_or(0) + u.reasoning;
    usage_ = u;
  }

  std::optional<TokenUsage> usage_;
  std::string block_reason_;
  bool finished_ = false;  // a candidate carried a finishReason
};

}  // namespace

std::unique_ptr<LlmParser> make_gemini_parser(const Endpoint& endpoint,
                                              const ParserLimits& limits) {
  return std::make_unique<GeminiParser>(endpoint, limits);
}

}  // namespace tokentap

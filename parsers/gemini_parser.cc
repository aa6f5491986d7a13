// Gemini API (generativelanguage.googleapis.com and Vertex AI): generateContent,
// streamGenerateContent as SSE (alt=sse) or as the default streamed JSON array, embedContent,
// batchEmbedContents and countTokens. Every body, event and array element is a
// GenerateContentResponse-shaped object, or {"error": {code, message, status}}.
#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parsers/json_util.h"
#include "parsers/provider_parsers.h"
#include "parsers/tool_results.h"

namespace tokentap {
namespace {

using json_util::array_member;
using json_util::as_string;
using json_util::count_member;
using json_util::member;
using json_util::object_member;
using json_util::string_member;
using json_util::true_member;
using Json = json_util::JsonNode;

constexpr size_t kMaxTrackedCandidates = 8;  // the API's candidateCount limit
constexpr size_t kMaxCallKeyBytes = 128;     // of an id or name kept to match later parts

// Whether another part of the same function call follows this one: the call says so, or one of
// its partial arguments does.
bool call_continues(const Json& call) {
  if (true_member(call, "willContinue")) return true;
  if (const Json* partial = array_member(call, "partialArgs")) {
    return std::any_of(partial->begin(), partial->end(),
                       [](const Json& arg) { return true_member(arg, "willContinue"); });
  }
  return false;
}

class GeminiParser final : public LlmParser {
 public:
  GeminiParser(const Endpoint& endpoint, const ParserLimits& limits) : LlmParser(endpoint, limits) {
    // EmbedContentResponse has no usageMetadata (Vertex AI's may; it is read when present).
    mutable_facts().usage_not_reported_by_api = endpoint.operation == Operation::embed_content;
  }

 private:
  // The model and the stream flag come from the URL; the body is read for tool results only.
  void parse_request(std::string_view body) override {
    if (request_names_tool_results()) {
      mutable_facts().tool_result_refs =
          newest_tool_results(endpoint().provider, endpoint().operation, body);
    }
  }

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
    mutable_facts().usage.service_tier = service_tier_;
    if (!usage_) return;
    TokenUsage& u = mutable_facts().usage;
    u = *usage_;
    u.service_tier = service_tier_;
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
          code = json_util::dump(*c);
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
          note_function_call(index, *call);
          note_generated_text(string_member(*call, "name"));
          if (const Json* args = object_member(*call, "args")) {
            note_generated_text(json_util::dump(*args));
          }
          if (!call->empty()) content = true;
        } else if (object_member(part, "executableCode") != nullptr) {
          add_tool_call("code_execution", ToolKind::server);
          content = true;
        } else if (!string_member(part, "text").empty() ||
                   object_member(part, "inlineData") != nullptr) {
          note_generated_text(string_member(part, "text"));
          content = true;
        }
      }
    }
    return content;
  }

  // With streamed function call arguments (Vertex AI's streamFunctionCallArguments) one call
  // spans many parts: the first names it and says willContinue, later ones carry only
  // partialArgs, and an empty functionCall may close it. Some servers repeat the id (and the
  // name) in every part. A part is counted as a new call unless it continues the candidate's
  // current one: it has no name, or the current call's id, or the current call's name while
  // that call said more parts follow.
  void note_function_call(uint64_t candidate, const Json& call) {
    CurrentCall& current = current_calls_[std::min<uint64_t>(candidate, kMaxTrackedCandidates - 1)];
    const std::string_view name = string_member(call, "name").substr(0, kMaxCallKeyBytes);
    const std::string_view id = string_member(call, "id").substr(0, kMaxCallKeyBytes);
    bool continues_current = false;
    if (current.seen) {
      if (!id.empty() && !current.id.empty()) {
        continues_current = id == current.id;
      } else {
        continues_current = name.empty() || (current.open && name == current.name);
      }
    }
    const Json* args = object_member(call, "args");
    const Json* partial = array_member(call, "partialArgs");
    const std::string arguments =
        (args ? json_util::dump(*args) : "") + (partial ? json_util::dump(*partial) : "");
    if (!continues_current) {
      add_tool_call(name);
      current.seen = true;
      current.id.assign(id);
      current.name.assign(name);
      current.ref = add_tool_call_ref(id, name, arguments);
    } else {
      add_tool_arguments(current.ref, arguments);
    }
    current.open = call_continues(call);
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
    u.tool_use_prompt = count_member(usage, "toolUsePromptTokenCount").value_or(0);
    u.input = prompt.value_or(0) + u.tool_use_prompt;
    u.reasoning = thoughts.value_or(0);
    u.output = candidates.value_or(0) + u.reasoning;
    u.input_audio = modality_count(usage, "promptTokensDetails", "AUDIO") +
                    modality_count(usage, "toolUsePromptTokensDetails", "AUDIO");
    u.input_image = modality_count(usage, "promptTokensDetails", "IMAGE") +
                    modality_count(usage, "toolUsePromptTokensDetails", "IMAGE");
    u.output_audio = modality_count(usage, "candidatesTokensDetails", "AUDIO");
    u.output_image = modality_count(usage, "candidatesTokensDetails", "IMAGE");
    usage_ = u;
    // The Gemini API reports serviceTier; Vertex AI reports trafficType instead.
    for (std::string_view key : {"serviceTier", "trafficType"}) {
      if (const std::string_view tier = string_member(usage, key); !tier.empty()) {
        service_tier_ = json_util::clean_label(tier, kMaxUsageTermBytes);
        break;
      }
    }
  }

  // The tokens of one modality ("TEXT", "IMAGE", "AUDIO", "VIDEO", "DOCUMENT") in a list of
  // {"modality", "tokenCount"} entries.
  static uint64_t modality_count(const Json& usage, std::string_view list,
                                 std::string_view modality) {
    const Json* entries = array_member(usage, list);
    if (entries == nullptr) return 0;
    uint64_t total = 0;
    for (const Json& entry : *entries) {
      if (string_member(entry, "modality") == modality) {
        total += count_member(entry, "tokenCount").value_or(0);
      }
    }
    return total;
  }

  struct CurrentCall {
    bool seen = false;
    bool open = false;        // its last part said another part follows
    size_t ref = kNoToolRef;  // its entry in LlmFacts::tool_call_refs
    std::string id;
    std::string name;
  };

  std::array<CurrentCall, kMaxTrackedCandidates> current_calls_{};
  std::optional<TokenUsage> usage_;
  std::string block_reason_;
  std::string service_tier_;
  bool finished_ = false;  // a candidate carried a finishReason
};

}  // namespace

std::unique_ptr<LlmParser> make_gemini_parser(const Endpoint& endpoint,
                                              const ParserLimits& limits) {
  return std::make_unique<GeminiParser>(endpoint, limits);
}

}  // namespace tokentap

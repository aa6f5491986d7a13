// OpenAI wire format: chat completions, legacy completions, embeddings and the Responses API,
// as served by OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM, Ollama, OpenRouter,
// Groq, DeepSeek, Mistral), whose extra fields are ignored.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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
using Json = json_util::JsonNode;

constexpr size_t kMaxTrackedToolCalls = 1024;

// Error codes are strings for OpenAI, numbers for some compatible servers.
std::string scalar_text(const Json* value) {
  if (value == nullptr) return {};
  if (value->is_string()) return std::string(value->string());
  if (value->is_number_unsigned()) return std::to_string(value->unsigned_number());
  if (value->is_number_integer()) return std::to_string(value->integer_number());
  return {};
}

class OpenAiParser final : public LlmParser {
 public:
  OpenAiParser(const Endpoint& endpoint, const ParserLimits& limits)
      : LlmParser(endpoint, limits) {}

 private:
  struct StreamedToolCall {
    uint64_t slot;   // choice index << 32 | tool call index
    std::string id;  // as first seen; a new id in the same slot is a new call
    size_t ref;      // its entry in LlmFacts::tool_call_refs, or kNoToolRef
  };

  bool responses_api() const { return endpoint().operation == Operation::responses; }

  void parse_request(std::string_view body) override {
    const bool ok = for_each_member(body, [&](std::string_view key, std::string_view value) {
      if (key == "model") {
        if (auto model = json_util::parse_string_literal(value)) set_requested_model(*model);
      } else if (key == "stream") {
        mutable_facts().stream = json_util::parse_bool_literal(value) == true;
      } else if (key == "stream_options" && value != "null") {
        mutable_facts().stream_options_present = true;
        for_each_member(value, [&](std::string_view k, std::string_view v) {
          if (k == "include_usage") {
            mutable_facts().include_usage_requested = json_util::parse_bool_literal(v) == true;
          }
        });
      }
    });
    if (!ok) {
      count_parse_error(ParseErrorKind::invalid_request);
      return;
    }
    // Tool results are in the newest turn only; a body without their markers has none to parse.
    if (request_names_tool_results()) {
      mutable_facts().tool_result_refs =
          newest_tool_results(endpoint().provider, endpoint().operation, body);
    }
  }

  bool wants_member(std::string_view key) const override {
    if (responses_api()) {
      return key == "model" || key == "status" || key == "incomplete_details" || key == "error" ||
             key == "usage" || key == "output" || key == "service_tier";
    }
    return key == "model" || key == "choices" || key == "usage" || key == "x_groq" ||
           key == "error" || key == "message" || key == "type" || key == "code" ||
           key == "service_tier";
  }

  void on_member(std::string_view key, const Json& value) override {
    if (responses_api()) {
      apply_response_member(key, value, /*count_output=*/true);
    } else {
      apply_completion_member(key, value, /*streaming=*/false);
    }
  }

  void on_event(std::string_view sse_type, const Json& data) override {
    if (!data.is_object()) {
      count_parse_error(ParseErrorKind::unexpected_shape);
      return;
    }
    if (responses_api()) {
      handle_responses_event(sse_type, data);
      return;
    }
    bool content = false;
    for (const auto& [key, value] : data.items()) {
      content = apply_completion_member(key, value, /*streaming=*/true) || content;
    }
    if (content) note_content();
  }

  void on_text_event(std::string_view sse_type, std::string_view data) override {
    if (data == "[DONE]") {
      mark_complete();
    } else {
      LlmParser::on_text_event(sse_type, data);
    }
  }

  void on_end() override {
    // The tier that served the request; it may differ from the one requested ("auto").
    if (!service_tier_.empty()) mutable_facts().usage.service_tier = service_tier_;
    if (responses_api()) {
      set_finish_reason(responses_finish_reason());
      // A background request is answered before the model has run; its usage comes later,
      // with GET /v1/responses/{id}.
      if (!facts().stream && (status_ == "queued" || status_ == "in_progress")) {
        mutable_facts().usage_not_reported_by_api = true;
      }
    }
    // vLLM-style errors put message/type/code at the top level of the body.
    if (facts().http_status >= 400 && !flat_error_.message.empty()) {
      set_error(flat_error_.type, flat_error_.code, flat_error_.message);
    }
  }

  // The Responses API says `completed` both for an answer and for a turn that asks the client
  // to run tools; report them as chat completions would (`tool_calls` / `stop`). An
  // incomplete response reports why (`max_output_tokens`, `content_filter`); `failed`,
  // `cancelled` and a background response's `queued` / `in_progress` stay as they are.
  std::string_view responses_finish_reason() const {
    if (status_ == "completed") return client_tool_calls_ ? "tool_calls" : "stop";
    if (status_ == "incomplete" && !incomplete_reason_.empty()) return incomplete_reason_;
    return status_;
  }

  // Chat completions, completions and embeddings: a body member, or a member of a stream
  // chunk. Returns true when it carried generated content.
  bool apply_completion_member(std::string_view key, const Json& value, bool streaming) {
    if (key == "model") {
      set_response_model(as_string(value));
    } else if (key == "choices") {
      if (value.is_array()) return apply_choices(value, streaming);
    } else if (key == "usage") {
      apply_usage(value);
    } else if (key == "service_tier") {
      set_service_tier(value);
    } else if (key == "x_groq") {
      if (const Json* usage = object_member(value, "usage")) apply_usage(*usage);
    } else if (key == "error") {
      apply_error(value);
    } else if (!streaming && facts().http_status >= 400) {
      if (key == "message") flat_error_.message = as_string(value);
      if (key == "type") flat_error_.type = as_string(value);
      if (key == "code") flat_error_.code = scalar_text(&value);
    }
    return false;
  }

  bool apply_choices(const Json& choices, bool streaming) {
    bool content = false;
    for (const Json& choice : choices) {
      if (!choice.is_object()) continue;
      const uint64_t index = count_member(choice, "index").value_or(0);
      const std::string_view reason = string_member(choice, "finish_reason");
      if (!reason.empty() && (index == 0 || facts().finish_reason.empty())) {
        set_finish_reason(reason);
      }
      if (const std::string_view text = string_member(choice, "text"); !text.empty()) {
        content = true;  // legacy completions
        if (streaming) note_generated_text(text);
      }
      if (!streaming) {
        if (const Json* message = object_member(choice, "message")) count_message_tools(*message);
        continue;
      }
      const Json* delta = object_member(choice, "delta");
      if (delta == nullptr) continue;
      for (std::string_view field : {"content", "refusal", "reasoning_content", "reasoning"}) {
        const std::string_view text = string_member(*delta, field);
        if (!text.empty()) content = true;
        note_generated_text(text);
      }
      if (const Json* calls = array_member(*delta, "tool_calls")) {
        if (!calls->empty()) content = true;
        for (size_t pos = 0; pos < calls->size(); ++pos) {
          const Json& call = (*calls)[pos];
          note_generated_text(tool_call_name(call));
          note_generated_text(tool_call_arguments(call));
          const uint64_t tool_index = count_member(call, "index").value_or(pos);
          note_streamed_tool_call(index << 32 | (tool_index & 0xFFFFFFFFu),
                                  string_member(call, "id"), tool_call_name(call),
                                  tool_call_arguments(call));
        }
      }
      if (const Json* fn = object_member(*delta, "function_call")) {
        content = true;
        note_generated_text(string_member(*fn, "name"));
        note_generated_text(string_member(*fn, "arguments"));
        note_streamed_tool_call(index << 32 | 0xFFFFFFFFu, {}, string_member(*fn, "name"),
                                string_member(*fn, "arguments"));
      }
    }
    return content;
  }

  static std::string_view tool_call_name(const Json& call) {
    if (const Json* fn = object_member(call, "function")) return string_member(*fn, "name");
    if (const Json* custom = object_member(call, "custom")) return string_member(*custom, "name");
    return {};
  }

  static std::string_view tool_call_arguments(const Json& call) {
    if (const Json* fn = object_member(call, "function")) return string_member(*fn, "arguments");
    if (const Json* custom = object_member(call, "custom")) return string_member(*custom, "input");
    return {};
  }

  void set_service_tier(const Json& value) {
    // Every chunk of a stream repeats it; a label already clean is kept as it is.
    if (value.is_string() && as_string(value) != service_tier_) {
      service_tier_ = json_util::clean_label(as_string(value), kMaxUsageTermBytes);
    }
  }

  void count_message_tools(const Json& message) {
    if (const Json* calls = array_member(message, "tool_calls")) {
      for (const Json& call : *calls) {
        add_tool_call(tool_call_name(call));
        add_tool_call_ref(string_member(call, "id"), tool_call_name(call),
                          tool_call_arguments(call));
      }
    }
    if (const Json* fn = object_member(message, "function_call")) {
      add_tool_call(string_member(*fn, "name"));
      add_tool_call_ref({}, string_member(*fn, "name"), string_member(*fn, "arguments"));
    }
  }

  // A streamed tool call is announced by its first delta (id and name); later deltas for the
  // same slot only carry argument text, hashed as it arrives. Some compatible servers repeat
  // the name in every delta, so each call is counted once per slot, unless a different id
  // shows up there.
  void note_streamed_tool_call(uint64_t slot, std::string_view id, std::string_view name,
                               std::string_view arguments) {
    for (StreamedToolCall& seen : seen_tool_calls_) {
      if (seen.slot != slot) continue;
      if (name.empty() || id.empty() || id == seen.id) {
        add_tool_arguments(seen.ref, arguments);
        return;
      }
      seen.id.assign(id.substr(0, 128));
      seen.ref = add_tool_call_ref(id, name, arguments);
      add_tool_call(name);
      return;
    }
    if (name.empty()) return;
    const size_t ref = add_tool_call_ref(id, name, arguments);
    if (seen_tool_calls_.size() < kMaxTrackedToolCalls) {
      seen_tool_calls_.push_back({slot, std::string(id.substr(0, 128)), ref});
    }
    add_tool_call(name);
  }

  // Chat completions (prompt_tokens / completion_tokens) and Responses (input_tokens /
  // output_tokens) usage. Both count cached tokens inside the input and reasoning tokens inside
  // the output, which is our semantics already.
  void apply_usage(const Json& usage) {
    if (!usage.is_object()) return;
    const auto prompt = count_member(usage, "prompt_tokens");
    const auto completion = count_member(usage, "completion_tokens");
    const auto input = count_member(usage, "input_tokens");
    const auto output = count_member(usage, "output_tokens");
    if (!prompt && !completion && !input && !output) return;
    TokenUsage t;
    t.present = true;
    t.input = prompt.value_or(input.value_or(0));
    t.output = completion.value_or(output.value_or(0));
    // Cache writes (cache_write_tokens, on models that bill them), audio and image tokens are
    // reported inside the input and output totals, like cached and reasoning tokens.
    for (std::string_view details : {"prompt_tokens_details", "input_tokens_details"}) {
      if (const Json* d = object_member(usage, details)) {
        if (auto cached = count_member(*d, "cached_tokens")) t.cache_read = *cached;
        if (auto written = count_member(*d, "cache_write_tokens")) t.cache_write = *written;
        if (auto audio = count_member(*d, "audio_tokens")) t.input_audio = *audio;
        if (auto image = count_member(*d, "image_tokens")) t.input_image = *image;
      }
    }
    if (t.cache_read == 0) {
      t.cache_read = count_member(usage, "prompt_cache_hit_tokens").value_or(0);  // DeepSeek
    }
    for (std::string_view details : {"completion_tokens_details", "output_tokens_details"}) {
      if (const Json* d = object_member(usage, details)) {
        if (auto reasoning = count_member(*d, "reasoning_tokens")) t.reasoning = *reasoning;
        if (auto audio = count_member(*d, "audio_tokens")) t.output_audio = *audio;
        if (auto image = count_member(*d, "image_tokens")) t.output_image = *image;
      }
    }
    mutable_facts().usage = t;
  }

  void apply_error(const Json& error) {
    if (error.is_string()) {
      set_error({}, {}, as_string(error));
    } else if (error.is_object()) {
      set_error(string_member(error, "type"), scalar_text(member(error, "code")),
                string_member(error, "message"));
    }
  }

  // A member of a Responses API `response` object, from a body or a lifecycle event.
  void apply_response_member(std::string_view key, const Json& value, bool count_output) {
    if (key == "model") {
      set_response_model(as_string(value));
    } else if (key == "status") {
      if (value.is_string()) status_.assign(as_string(value).substr(0, 64));
    } else if (key == "incomplete_details") {
      incomplete_reason_.assign(string_member(value, "reason").substr(0, 64));
    } else if (key == "error") {
      apply_error(value);
    } else if (key == "usage") {
      apply_usage(value);
    } else if (key == "service_tier") {
      set_service_tier(value);
    } else if (key == "output" && count_output && value.is_array()) {
      for (const Json& item : value) count_output_item(item);
    }
  }

  // A Responses API output item that is a tool call. Functions and custom tools are named by the
  // item; built-in tools by their type (web_search_call -> web_search).
  void count_output_item(const Json& item) {
    const std::string_view type = string_member(item, "type");
    if (!type.ends_with("_call")) return;
    const ToolKind kind = output_item_kind(type, item);
    if (kind == ToolKind::function) client_tool_calls_ = true;
    if (type == "function_call" || type == "custom_tool_call" || type == "mcp_call") {
      const std::string_view name = string_member(item, "name");
      add_tool_call(name.empty() ? type : name, kind);
      if (type != "mcp_call") note_output_call(item);
    } else {
      add_tool_call(type.substr(0, type.size() - 5), kind);
    }
  }

  // A function or custom tool call output item: its arguments are complete in a body and in
  // output_item.done, empty in output_item.added (the same call_id, hashed again when done).
  void note_output_call(const Json& item) {
    const std::string_view id = string_member(item, "call_id");
    std::string_view arguments = string_member(item, "arguments");
    if (string_member(item, "type") == "custom_tool_call") arguments = string_member(item, "input");
    if (!id.empty()) {
      for (ToolCallRef& ref : mutable_facts().tool_call_refs) {
        if (ref.call_id != id) continue;
        ref.arguments_hash = hash_tool_arguments(kToolArgumentsHashSeed, arguments);
        return;
      }
    }
    add_tool_call_ref(id, string_member(item, "name"), arguments);
  }

  // Whether the client runs the call (it ends the turn, like a chat completion's tool_calls)
  // or OpenAI ran it inside the response. Built-in tools not named here are hosted ones.
  static ToolKind output_item_kind(std::string_view type, const Json& item) {
    if (type == "function_call" || type == "custom_tool_call" || type == "computer_call" ||
        type == "local_shell_call" || type == "apply_patch_call") {
      return ToolKind::function;
    }
    if (type == "shell_call") {
      // Hosted shell runs in an OpenAI container; a local environment is the client's.
      const Json* environment = object_member(item, "environment");
      const bool hosted =
          environment != nullptr && string_member(*environment, "type") == "container_reference";
      return hosted ? ToolKind::server : ToolKind::function;
    }
    if (type == "tool_search_call" && string_member(item, "execution") == "client") {
      return ToolKind::function;
    }
    return ToolKind::server;
  }

  void handle_responses_event(std::string_view sse_type, const Json& data) {
    std::string_view type = string_member(data, "type");
    if (type.empty()) type = sse_type;
    const bool terminal =
        type == "response.completed" || type == "response.incomplete" || type == "response.failed";
    if (terminal || type == "response.created" || type == "response.in_progress" ||
        type == "response.queued") {
      if (const Json* response = object_member(data, "response")) {
        // Tool calls were counted from output_item.added as they streamed. Only the terminal
        // event's status is the outcome: a stream cut after response.queued has none.
        for (const auto& [key, value] : response->items()) {
          if (key == "status" && !terminal) continue;
          apply_response_member(key, value, /*count_output=*/false);
        }
      }
      if (terminal) mark_complete();
    } else if (type == "response.output_item.added") {
      if (const Json* item = object_member(data, "item")) count_output_item(*item);
    } else if (type == "response.output_item.done") {
      const Json* item = object_member(data, "item");
      const std::string_view item_type = item ? string_member(*item, "type") : std::string_view();
      if (item_type == "function_call" || item_type == "custom_tool_call") note_output_call(*item);
    } else if (type == "error") {
      set_error({}, scalar_text(member(data, "code")), string_member(data, "message"));
    } else if (type.ends_with(".delta")) {
      const Json* delta = member(data, "delta");
      if (delta == nullptr || !delta->is_string() || !as_string(*delta).empty()) note_content();
      // Audio deltas are base64 audio (and its transcript), not a measure of tokens.
      if (delta != nullptr && type.find("audio") == std::string_view::npos) {
        note_generated_text(as_string(*delta));
      }
    }
  }

  std::vector<StreamedToolCall> seen_tool_calls_;
  std::string status_;  // Responses API status
  std::string incomplete_reason_;
  std::string service_tier_;
  bool client_tool_calls_ = false;  // the Responses output holds calls for the client to run
  struct {
    std::string type, code, message;
  } flat_error_;
};

}  // namespace

std::unique_ptr<LlmParser> make_openai_parser(const Endpoint& endpoint,
                                              const ParserLimits& limits) {
  return std::make_unique<OpenAiParser>(endpoint, limits);
}

}  // namespace tokentap

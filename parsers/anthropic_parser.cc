// Anthropic Messages API: the request (model, stream, tool results in the newest user turn),
// the non-streamed Message, and the SSE sequence message_start, content_block_start/delta/stop,
// message_delta, message_stop, ping and error.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "parsers/json_util.h"
#include "parsers/provider_parsers.h"

namespace tokentap {
namespace {

using json_util::as_string;
using json_util::count_member;
using json_util::object_member;
using json_util::string_member;
using Json = json_util::JsonNode;

constexpr size_t kMaxToolUses = 4096;
constexpr size_t kMaxToolResults = 1024;
constexpr size_t kMaxIdBytes = 128;

bool is_tool_use_block(std::string_view type) {
  return type == "tool_use" || type == "server_tool_use" || type == "mcp_tool_use";
}

// tool_use blocks go to the client; Anthropic runs server tools (web_search, web_fetch,
// code_execution, ...) and remote MCP servers' tools itself.
ToolKind tool_use_kind(std::string_view type) {
  return type == "tool_use" ? ToolKind::function : ToolKind::server;
}

// Reads the few request fields we need by walking the body with JsonSplitter: large values
// (message text, tool inputs and outputs, images) are skipped without being parsed or copied.
class RequestScanner {
 public:
  struct ToolResult {
    std::string tool_use_id;
    bool is_error = false;
  };

  // Returns false when `messages` is not an array of objects.
  bool scan_messages(std::string_view messages) {
    bool ok = true;
    const bool array = for_each_element(
        messages, [&](std::string_view message) { ok = scan_message(message) && ok; });
    return array && ok;
  }

  std::string_view tool_name(std::string_view id) const {
    for (const auto& [use_id, name] : tool_uses_) {
      if (use_id == id) return name;
    }
    return {};
  }

  const std::vector<ToolResult>& newest_user_results() const { return newest_user_results_; }

 private:
  bool scan_message(std::string_view message) {
    std::optional<std::string> role;
    std::string_view content;
    const bool ok = for_each_member(message, [&](std::string_view key, std::string_view value) {
      if (key == "role") {
        role = json_util::parse_string_literal(value);
      } else if (key == "content") {
        content = value;
      }
    });
    if (!ok) return false;
    std::vector<ToolResult> results;
    if (!content.empty() && content.front() == '[') {
      for_each_element(content, [&](std::string_view block) { scan_block(block, results); });
    }
    if (role == "user") newest_user_results_ = std::move(results);
    return true;
  }

  void scan_block(std::string_view block, std::vector<ToolResult>& results) {
    std::optional<std::string> type, id, name, tool_use_id;
    bool is_error = false;
    for_each_member(block, [&](std::string_view key, std::string_view value) {
      if (key == "type") {
        type = json_util::parse_string_literal(value);
      } else if (key == "id") {
        id = json_util::parse_string_literal(value);
      } else if (key == "name") {
        name = json_util::parse_string_literal(value);
      } else if (key == "tool_use_id") {
        tool_use_id = json_util::parse_string_literal(value);
      } else if (key == "is_error") {
        is_error = json_util::parse_bool_literal(value) == true;
      }
    });
    if (!type) return;
    if (is_tool_use_block(*type) && id && name && tool_uses_.size() < kMaxToolUses) {
      tool_uses_.emplace_back(id->substr(0, kMaxIdBytes), json_util::clean_label(*name));
    } else if (*type == "tool_result" && tool_use_id && results.size() < kMaxToolResults) {
      results.push_back({tool_use_id->substr(0, kMaxIdBytes), is_error});
    }
  }

  std::vector<std::pair<std::string, std::string>> tool_uses_;  // id -> tool name
  std::vector<ToolResult> newest_user_results_;
};

class AnthropicParser final : public LlmParser {
 public:
  AnthropicParser(const Endpoint& endpoint, const ParserLimits& limits)
      : LlmParser(endpoint, limits) {}

 private:
  void parse_request(std::string_view body) override {
    RequestScanner scanner;
    bool messages_ok = true;
    const bool ok = for_each_member(body, [&](std::string_view key, std::string_view value) {
      if (key == "model") {
        if (auto model = json_util::parse_string_literal(value)) set_requested_model(*model);
      } else if (key == "stream") {
        mutable_facts().stream = json_util::parse_bool_literal(value) == true;
      } else if (key == "messages") {
        messages_ok = scanner.scan_messages(value);
      }
    });
    if (!ok || !messages_ok) {
      count_parse_error(ParseErrorKind::invalid_request);
      return;
    }
    std::vector<ToolResultCount>& counts = mutable_facts().tool_results;
    std::vector<ToolResultRef>& refs = mutable_facts().tool_result_refs;
    for (const RequestScanner::ToolResult& r : scanner.newest_user_results()) {
      std::string tool(scanner.tool_name(r.tool_use_id));
      if (refs.size() < kMaxToolResultRefs) {
        refs.push_back({.call_id = json_util::clean_label(r.tool_use_id, kMaxToolRefBytes),
                        .name = tool,
                        .is_error = r.is_error});
      }
      if (tool.empty()) tool = "unknown";
      auto it = std::find_if(counts.begin(), counts.end(), [&](const ToolResultCount& c) {
        return c.tool == tool && c.is_error == r.is_error;
      });
      if (it != counts.end()) {
        ++it->count;
      } else {
        counts.push_back({std::move(tool), r.is_error, 1});
      }
    }
  }

  bool wants_member(std::string_view key) const override {
    return key == "model" || key == "stop_reason" || key == "usage" || key == "content" ||
           key == "error";
  }

  void on_member(std::string_view key, const Json& value) override {
    if (key == "model") {
      set_response_model(as_string(value));
    } else if (key == "stop_reason") {
      set_finish_reason(as_string(value));
    } else if (key == "usage") {
      apply_usage(value, /*final=*/true);
    } else if (key == "content" && value.is_array()) {
      for (const Json& block : value) {
        const std::string_view type = string_member(block, "type");
        if (is_tool_use_block(type)) {
          add_tool_call(string_member(block, "name"), tool_use_kind(type));
          if (tool_use_kind(type) == ToolKind::function) {
            const Json* input = json_util::member(block, "input");
            add_tool_call_ref(string_member(block, "id"), string_member(block, "name"),
                              input != nullptr ? json_util::dump(*input) : std::string());
          }
        }
      }
    } else if (key == "error") {
      apply_error(value);
    }
  }

  void on_event(std::string_view sse_type, const Json& data) override {
    std::string_view type = string_member(data, "type");
    if (type.empty()) type = sse_type;
    if (type == "message_start") {
      if (const Json* message = object_member(data, "message")) {
        set_response_model(string_member(*message, "model"));
        if (const Json* usage = object_member(*message, "usage")) {
          apply_usage(*usage, /*final=*/false);
        }
      }
    } else if (type == "content_block_start") {
      if (const Json* block = object_member(data, "content_block")) {
        const std::string_view block_type = string_member(*block, "type");
        if (is_tool_use_block(block_type)) {
          add_tool_call(string_member(*block, "name"), tool_use_kind(block_type));
          if (tool_use_kind(block_type) == ToolKind::function) {
            note_streamed_tool_use(count_member(data, "index").value_or(0),
                                   string_member(*block, "id"), string_member(*block, "name"));
          }
          note_generated_text(string_member(*block, "name"));
          note_content();
        } else if (!string_member(*block, "text").empty() ||
                   !string_member(*block, "thinking").empty()) {
          note_generated_text(string_member(*block, "text"));
          note_generated_text(string_member(*block, "thinking"));
          note_content();
        }
      }
    } else if (type == "content_block_delta") {
      if (const Json* delta = object_member(data, "delta")) {
        bool content = false;
        for (std::string_view field : {"text", "partial_json", "thinking"}) {
          const std::string_view text = string_member(*delta, field);
          note_generated_text(text);
          content = content || !text.empty();
        }
        if (const std::string_view json = string_member(*delta, "partial_json"); !json.empty()) {
          add_tool_arguments(streamed_ref(count_member(data, "index").value_or(0)), json);
        }
        if (content) note_content();
      }
    } else if (type == "message_delta") {
      if (const Json* delta = object_member(data, "delta")) {
        set_finish_reason(string_member(*delta, "stop_reason"));
      }
      if (const Json* usage = object_member(data, "usage")) apply_usage(*usage, /*final=*/true);
    } else if (type == "message_stop") {
      mark_complete();
    } else if (type == "error") {
      if (const Json* error = object_member(data, "error")) apply_error(*error);
    }
  }

  void on_end() override {
    TokenUsage& u = mutable_facts().usage;
    u.service_tier = service_tier_;
    u.inference_geo = inference_geo_;
    if (!input_ && !output_ && !cache_write_ && !cache_read_ && !cache_write_5m_ &&
        !cache_write_1h_) {
      return;
    }
    // Without the final usage (message_delta, or a whole Message) the counts are partial.
    u.present = final_usage_seen_;
    u.cache_read = cache_read_.value_or(0);
    // cache_creation_input_tokens is the sum of the TTL breakdown; trust the breakdown when
    // the sum is absent.
    u.cache_write =
        cache_write_.value_or(cache_write_5m_.value_or(0) + cache_write_1h_.value_or(0));
    u.cache_write_1h = std::min(cache_write_1h_.value_or(0), u.cache_write);
    u.input = input_.value_or(0) + u.cache_read + u.cache_write;
    u.output = output_.value_or(0);
  }

  // message_start carries the input side and a provisional output count; message_delta carries
  // cumulative counts that replace whatever it includes.
  void apply_usage(const Json& usage, bool final) {
    if (!usage.is_object()) return;
    if (auto v = count_member(usage, "input_tokens")) input_ = v;
    if (auto v = count_member(usage, "output_tokens")) output_ = v;
    if (auto v = count_member(usage, "cache_creation_input_tokens")) cache_write_ = v;
    if (auto v = count_member(usage, "cache_read_input_tokens")) cache_read_ = v;
    // "cache_creation": {"ephemeral_5m_input_tokens": N, "ephemeral_1h_input_tokens": M}
    // splits cache_creation_input_tokens by TTL; the 1-hour writes cost more.
    if (const Json* by_ttl = object_member(usage, "cache_creation")) {
      if (auto v = count_member(*by_ttl, "ephemeral_5m_input_tokens")) cache_write_5m_ = v;
      if (auto v = count_member(*by_ttl, "ephemeral_1h_input_tokens")) cache_write_1h_ = v;
    }
    // "standard", "priority" or "batch"; "global", "us" or "not_available" (US-only inference
    // costs more on newer models).
    if (const std::string_view tier = string_member(usage, "service_tier"); !tier.empty()) {
      service_tier_ = json_util::clean_label(tier, kMaxUsageTermBytes);
    }
    if (const std::string_view geo = string_member(usage, "inference_geo"); !geo.empty()) {
      inference_geo_ = json_util::clean_label(geo, kMaxUsageTermBytes);
    }
    if (final) final_usage_seen_ = true;
  }

  void apply_error(const Json& error) {
    set_error(string_member(error, "type"), {}, string_member(error, "message"));
  }

  // A streamed tool_use block: its input arrives as partial_json deltas of the same block
  // index, hashed as they come (a non-streamed Message's input is hashed as parsed, so the two
  // forms of the same input may hash differently).
  void note_streamed_tool_use(uint64_t index, std::string_view id, std::string_view name) {
    const size_t ref = add_tool_call_ref(id, name);
    if (ref != kNoToolRef) streamed_refs_.emplace_back(index, ref);
  }
  size_t streamed_ref(uint64_t index) const {
    for (const auto& [block, ref] : streamed_refs_) {
      if (block == index) return ref;
    }
    return kNoToolRef;
  }

  std::optional<uint64_t> input_, output_, cache_write_, cache_write_5m_, cache_write_1h_,
      cache_read_;
  std::string service_tier_, inference_geo_;
  bool final_usage_seen_ = false;
  std::vector<std::pair<uint64_t, size_t>> streamed_refs_;  // block index -> tool_call_refs
};

}  // namespace

std::unique_ptr<LlmParser> make_anthropic_parser(const Endpoint& endpoint,
                                                 const ParserLimits& limits) {
  return std::make_unique<AnthropicParser>(endpoint, limits);
}

}  // namespace tokentap

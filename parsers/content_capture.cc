#include "parsers/content_capture.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "parsers/json_util.h"

namespace tokentap {
namespace {

using json_util::array_member;
using json_util::as_string;
using json_util::count_member;
using json_util::member;
using json_util::object_member;
using json_util::string_member;
using Json = nlohmann::json;

constexpr size_t kMaxOutputMessages = 8;  // choices / candidates kept
constexpr size_t kMaxParts = 512;         // per side: many tiny parts cost more than their text

// The longest prefix of `s` no longer than `n` that ends at a UTF-8 character boundary.
size_t utf8_prefix(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

// Tool arguments and responses that came as JSON values rather than strings.
std::string json_text(const Json* value) {
  if (value == nullptr) return {};
  if (value->is_string()) return std::string(as_string(*value));
  return value->dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string_view gemini_role(std::string_view role) {
  return role == "model" ? std::string_view("assistant") : role;
}

}  // namespace

ContentCapture::ContentCapture(const Endpoint& endpoint, size_t max_bytes)
    : endpoint_(endpoint),
      max_bytes_(max_bytes),
      in_{&content_.input, 0, &content_.input_truncated},
      out_{&content_.output, 0, &content_.output_truncated} {}

bool ContentCapture::fit(Side& side, std::string_view text, std::string& into) {
  if (*side.truncated) return false;
  const size_t room = max_bytes_ - side.used;
  if (text.size() > room) {
    text = text.substr(0, utf8_prefix(text, room));
    *side.truncated = true;
  }
  into.append(text);
  side.used += text.size();
  return !*side.truncated;
}

ContentMessage* ContentCapture::message(Side& side, std::string_view role) {
  if (*side.truncated || side.messages->size() >= kMaxParts) {
    *side.truncated = true;
    return nullptr;
  }
  ContentMessage& msg = side.messages->emplace_back();
  fit(side, role.substr(0, 32), msg.role);
  return &msg;
}

ContentMessage* ContentCapture::output_message(uint64_t index) {
  for (size_t i = 0; i < output_index_.size(); ++i) {
    if (output_index_[i] == index) return &content_.output[i];
  }
  if (output_index_.size() >= kMaxOutputMessages) return nullptr;
  ContentMessage* msg = message(out_, "assistant");
  if (msg != nullptr) output_index_.push_back(index);
  return msg;
}

void ContentCapture::add_part(Side& side, ContentMessage& msg, std::string_view type,
                              std::string_view id, std::string_view name,
                              std::string_view content) {
  size_t parts = 0;
  for (const ContentMessage& m : *side.messages) parts += m.parts.size();
  if (*side.truncated || parts >= kMaxParts) {
    *side.truncated = true;
    return;
  }
  ContentPart& part = msg.parts.emplace_back();
  part.type.assign(type.substr(0, 32));
  if (fit(side, id.substr(0, 128), part.id) && fit(side, name.substr(0, 128), part.name)) {
    fit(side, content, part.content);
  }
}

void ContentCapture::append(Side& side, ContentMessage& msg, std::string_view type,
                            std::string_view text, bool merge) {
  if (text.empty()) return;
  if (merge && !msg.parts.empty() && msg.parts.back().type == type) {
    fit(side, text, msg.parts.back().content);
  } else {
    add_part(side, msg, type, {}, {}, text);
  }
}

void ContentCapture::add_system(std::string_view text) {
  if (text.empty()) return;
  if (*in_.truncated || content_.system.size() >= kMaxParts) {
    *in_.truncated = true;
    return;
  }
  ContentPart& part = content_.system.emplace_back();
  part.type = "text";
  fit(in_, text, part.content);
}

// ---- request ----

void ContentCapture::on_request(std::string_view body) {
  const Json parsed = json_util::parse(body);
  if (!parsed.is_object()) return;
  switch (endpoint_.format) {
    case WireFormat::openai:
      if (endpoint_.operation == Operation::responses) {
        responses_input(parsed);
      } else {
        openai_chat_input(parsed);
      }
      break;
    case WireFormat::anthropic:
      anthropic_input(parsed);
      break;
    case WireFormat::gemini:
      gemini_input(parsed);
      break;
  }
}

// A string, or an array of typed parts: OpenAI's {type: text|input_text|output_text, text},
// Anthropic's blocks (text, thinking, tool_use, tool_result, image...). Other types are kept by
// name only.
void ContentCapture::content_parts(Side& side, ContentMessage& msg, const Json& content) {
  if (content.is_string()) {
    append(side, msg, "text", as_string(content), false);
    return;
  }
  if (!content.is_array()) return;
  for (const Json& block : content) {
    const std::string_view type = string_member(block, "type");
    if (type == "text" || type == "input_text" || type == "output_text") {
      append(side, msg, "text", string_member(block, "text"), false);
    } else if (type == "refusal") {
      append(side, msg, "text", string_member(block, "refusal"), false);
    } else if (type == "thinking") {
      append(side, msg, "reasoning", string_member(block, "thinking"), false);
    } else if (type == "tool_use" || type == "server_tool_use" || type == "mcp_tool_use") {
      add_part(side, msg, "tool_call", string_member(block, "id"), string_member(block, "name"),
               json_text(member(block, "input")));
    } else if (type == "tool_result") {
      std::string text;
      if (const Json* c = member(block, "content"); c != nullptr && c->is_array()) {
        for (const Json& b : *c) text.append(string_member(b, "text"));
      } else {
        text = json_text(member(block, "content"));
      }
      add_part(side, msg, "tool_call_response", string_member(block, "tool_use_id"), {}, text);
    } else if (!type.empty()) {
      add_part(side, msg, type, {}, {}, {});
    }
  }
}

void ContentCapture::openai_chat_input(const Json& body) {
  if (const Json* prompt = member(body, "prompt")) {  // legacy completions
    if (ContentMessage* msg = message(in_, "user")) {
      if (prompt->is_array()) {
        for (const Json& p : *prompt) append(in_, *msg, "text", as_string(p), false);
      } else {
        append(in_, *msg, "text", as_string(*prompt), false);
      }
    }
    return;
  }
  const Json* messages = array_member(body, "messages");
  if (messages == nullptr) return;
  for (const Json& m : *messages) {
    const std::string_view role = string_member(m, "role");
    ContentMessage* msg = message(in_, role);
    if (msg == nullptr) return;
    if (role == "tool") {
      std::string text;
      if (const Json* c = member(m, "content"); c != nullptr && c->is_array()) {
        for (const Json& b : *c) text.append(string_member(b, "text"));
      } else {
        text = json_text(member(m, "content"));
      }
      add_part(in_, *msg, "tool_call_response", string_member(m, "tool_call_id"), {}, text);
      continue;
    }
    if (const Json* content = member(m, "content")) content_parts(in_, *msg, *content);
    if (const Json* calls = array_member(m, "tool_calls")) {
      for (const Json& call : *calls) {
        const Json* fn = object_member(call, "function");
        if (fn == nullptr) fn = object_member(call, "custom");
        if (fn == nullptr) continue;
        const Json* args = member(*fn, "arguments");
        add_part(in_, *msg, "tool_call", string_member(call, "id"), string_member(*fn, "name"),
                 json_text(args != nullptr ? args : member(*fn, "input")));
      }
    }
  }
}

void ContentCapture::responses_input(const Json& body) {
  add_system(string_member(body, "instructions"));
  const Json* input = member(body, "input");
  if (input == nullptr) return;
  if (input->is_string()) {
    if (ContentMessage* msg = message(in_, "user")) {
      append(in_, *msg, "text", as_string(*input), false);
    }
    return;
  }
  if (!input->is_array()) return;
  for (const Json& item : *input) {
    const std::string_view type = string_member(item, "type");
    ContentMessage* msg = nullptr;
    if (type.empty() || type == "message") {
      msg = message(in_, string_member(item, "role"));
      if (msg != nullptr) {
        if (const Json* content = member(item, "content")) content_parts(in_, *msg, *content);
      }
    } else if (type == "function_call" || type == "custom_tool_call") {
      msg = message(in_, "assistant");
      if (msg != nullptr) {
        const Json* args = member(item, "arguments");
        add_part(in_, *msg, "tool_call", string_member(item, "call_id"),
                 string_member(item, "name"), json_text(args ? args : member(item, "input")));
      }
    } else if (type == "function_call_output" || type == "custom_tool_call_output") {
      msg = message(in_, "tool");
      if (msg != nullptr) {
        add_part(in_, *msg, "tool_call_response", string_member(item, "call_id"), {},
                 json_text(member(item, "output")));
      }
    } else {
      continue;  // reasoning items, hosted tool calls: replayed state, not conversation
    }
    if (msg == nullptr) return;
  }
}

void ContentCapture::anthropic_input(const Json& body) {
  if (const Json* system = member(body, "system")) {
    if (system->is_string()) {
      add_system(as_string(*system));
    } else if (system->is_array()) {
      for (const Json& block : *system) add_system(string_member(block, "text"));
    }
  }
  const Json* messages = array_member(body, "messages");
  if (messages == nullptr) return;
  for (const Json& m : *messages) {
    ContentMessage* msg = message(in_, string_member(m, "role"));
    if (msg == nullptr) return;
    if (const Json* content = member(m, "content")) content_parts(in_, *msg, *content);
  }
}

void ContentCapture::gemini_parts(Side& side, ContentMessage& msg, const Json& parts) {
  for (const Json& part : parts) {
    if (const Json* call = object_member(part, "functionCall")) {
      add_part(side, msg, "tool_call", string_member(*call, "id"), string_member(*call, "name"),
               json_text(member(*call, "args")));
    } else if (const Json* response = object_member(part, "functionResponse")) {
      add_part(side, msg, "tool_call_response", string_member(*response, "id"),
               string_member(*response, "name"), json_text(member(*response, "response")));
    } else if (member(part, "text") != nullptr) {
      const bool thought = json_util::true_member(part, "thought");
      append(side, msg, thought ? "reasoning" : "text", string_member(part, "text"),
             &side == &out_);
    } else if (!part.empty() && part.is_object()) {
      add_part(side, msg, part.begin().key(), {}, {}, {});  // inlineData, fileData, ...
    }
  }
}

void ContentCapture::gemini_input(const Json& body) {
  const Json* system = object_member(body, "systemInstruction");
  if (system == nullptr) system = object_member(body, "system_instruction");
  if (system != nullptr) {
    if (const Json* parts = array_member(*system, "parts")) {
      for (const Json& part : *parts) add_system(string_member(part, "text"));
    }
  }
  const Json* contents = array_member(body, "contents");
  if (contents == nullptr) return;
  for (const Json& c : *contents) {
    std::string_view role = gemini_role(string_member(c, "role"));
    ContentMessage* msg = message(in_, role.empty() ? std::string_view("user") : role);
    if (msg == nullptr) return;
    if (const Json* parts = array_member(c, "parts")) gemini_parts(in_, *msg, *parts);
  }
}

// ---- response ----

void ContentCapture::on_member(std::string_view key, const Json& value) {
  if (endpoint_.format == WireFormat::openai) {
    if (endpoint_.operation == Operation::responses) {
      if (key == "output" && value.is_array()) {
        for (const Json& item : value) responses_output_item(item);
      }
    } else if (key == "choices" && value.is_array()) {
      openai_choices(value, /*streaming=*/false);
    }
  } else if (endpoint_.format == WireFormat::anthropic) {
    if (key == "content" && value.is_array()) {
      for (const Json& block : value) anthropic_block(block);
    }
  } else if (key == "candidates" && value.is_array()) {
    gemini_candidates(value);
  }
}

void ContentCapture::on_event(std::string_view sse_type, const Json& data) {
  if (!data.is_object() || *out_.truncated) return;
  std::string_view type = string_member(data, "type");
  if (type.empty()) type = sse_type;
  if (endpoint_.format == WireFormat::openai) {
    if (endpoint_.operation == Operation::responses) {
      responses_event(type, data);
    } else if (const Json* choices = array_member(data, "choices")) {
      openai_choices(*choices, /*streaming=*/true);
    }
  } else if (endpoint_.format == WireFormat::anthropic) {
    anthropic_event(type, data);
  } else if (const Json* candidates = array_member(data, "candidates")) {
    gemini_candidates(*candidates);
  }
}

void ContentCapture::openai_choices(const Json& choices, bool streaming) {
  for (const Json& choice : choices) {
    const uint64_t index = count_member(choice, "index").value_or(0);
    ContentMessage* msg = output_message(index);
    if (msg == nullptr) return;
    if (const std::string_view reason = string_member(choice, "finish_reason"); !reason.empty()) {
      msg->finish_reason.assign(reason.substr(0, 64));
    }
    append(out_, *msg, "text", string_member(choice, "text"), streaming);  // legacy
    const Json* m = object_member(choice, streaming ? "delta" : "message");
    if (m == nullptr) continue;
    for (const char* field : {"reasoning_content", "reasoning"}) {
      append(out_, *msg, "reasoning", string_member(*m, field), streaming);
    }
    append(out_, *msg, "text", string_member(*m, "content"), streaming);
    append(out_, *msg, "text", string_member(*m, "refusal"), streaming);
    const Json* calls = array_member(*m, "tool_calls");
    if (calls == nullptr) continue;
    for (size_t pos = 0; pos < calls->size(); ++pos) {
      const Json& call = (*calls)[pos];
      const Json* fn = object_member(call, "function");
      if (fn == nullptr) fn = object_member(call, "custom");
      if (fn == nullptr) continue;
      std::string_view args = string_member(*fn, "arguments");
      if (args.empty()) args = string_member(*fn, "input");
      if (!streaming) {
        add_part(out_, *msg, "tool_call", string_member(call, "id"), string_member(*fn, "name"),
                 args);
        continue;
      }
      // The first delta of a call names it; later ones for the same index add argument text.
      const uint64_t slot = index << 32 | (count_member(call, "index").value_or(pos) & 0xFFFFFFFFu);
      auto seen = std::find_if(stream_calls_.begin(), stream_calls_.end(),
                               [&](const auto& s) { return s.first == slot; });
      if (seen != stream_calls_.end() && seen->second < msg->parts.size()) {
        fit(out_, args, msg->parts[seen->second].content);
      } else {
        add_part(out_, *msg, "tool_call", string_member(call, "id"), string_member(*fn, "name"),
                 args);
        if (stream_calls_.size() < kMaxParts)
          stream_calls_.emplace_back(slot, msg->parts.size() - 1);
      }
    }
  }
}

void ContentCapture::responses_output_item(const Json& item) {
  ContentMessage* msg = output_message(0);
  if (msg == nullptr) return;
  const std::string_view type = string_member(item, "type");
  if (type == "message") {
    if (const Json* content = member(item, "content")) content_parts(out_, *msg, *content);
  } else if (type == "reasoning") {
    if (const Json* summary = array_member(item, "summary")) {
      for (const Json& s : *summary)
        append(out_, *msg, "reasoning", string_member(s, "text"), false);
    }
  } else if (type == "function_call" || type == "custom_tool_call") {
    const Json* args = member(item, "arguments");
    add_part(out_, *msg, "tool_call", string_member(item, "call_id"), string_member(item, "name"),
             json_text(args ? args : member(item, "input")));
  } else if (type.ends_with("_call")) {
    add_part(out_, *msg, "tool_call", string_member(item, "id"), type.substr(0, type.size() - 5),
             {});
  }
}

void ContentCapture::responses_event(std::string_view type, const Json& data) {
  ContentMessage* msg = output_message(0);
  if (msg == nullptr) return;
  const std::string_view delta = string_member(data, "delta");
  if (type == "response.output_text.delta" || type == "response.refusal.delta") {
    append(out_, *msg, "text", delta, true);
  } else if (type == "response.reasoning_summary_text.delta" ||
             type == "response.reasoning_text.delta") {
    append(out_, *msg, "reasoning", delta, true);
  } else if (type == "response.output_item.added") {
    const Json* item = object_member(data, "item");
    if (item == nullptr) return;
    const std::string_view item_type = string_member(*item, "type");
    if (item_type == "function_call" || item_type == "custom_tool_call") {
      add_part(out_, *msg, "tool_call", string_member(*item, "call_id"),
               string_member(*item, "name"), {});
    } else if (item_type.ends_with("_call")) {
      add_part(out_, *msg, "tool_call", string_member(*item, "id"),
               item_type.substr(0, item_type.size() - 5), {});
    }
  } else if (type == "response.function_call_arguments.delta" ||
             type == "response.custom_tool_call_input.delta") {
    if (!msg->parts.empty() && msg->parts.back().type == "tool_call") {
      fit(out_, delta, msg->parts.back().content);
    }
  }
}

void ContentCapture::anthropic_block(const Json& block) {
  ContentMessage* msg = output_message(0);
  if (msg == nullptr) return;
  content_parts(out_, *msg, Json::array({block}));
}

void ContentCapture::anthropic_event(std::string_view type, const Json& data) {
  if (type == "content_block_start") {
    const Json* block = object_member(data, "content_block");
    if (block == nullptr) return;
    ContentMessage* msg = output_message(0);
    if (msg == nullptr) return;
    const std::string_view block_type = string_member(*block, "type");
    if (block_type == "text") {
      add_part(out_, *msg, "text", {}, {}, string_member(*block, "text"));
    } else if (block_type == "thinking") {
      add_part(out_, *msg, "reasoning", {}, {}, string_member(*block, "thinking"));
    } else if (block_type.ends_with("tool_use")) {
      // The input arrives as input_json_delta fragments; the start carries an empty object.
      add_part(out_, *msg, "tool_call", string_member(*block, "id"), string_member(*block, "name"),
               {});
    } else if (!block_type.empty()) {
      add_part(out_, *msg, block_type, {}, {}, {});
    }
  } else if (type == "content_block_delta") {
    const Json* delta = object_member(data, "delta");
    ContentMessage* msg = output_message(0);
    if (delta == nullptr || msg == nullptr || msg->parts.empty()) return;
    for (const char* field : {"text", "partial_json", "thinking"}) {
      fit(out_, string_member(*delta, field), msg->parts.back().content);
    }
  }
}

void ContentCapture::gemini_candidates(const Json& candidates) {
  for (const Json& candidate : candidates) {
    ContentMessage* msg = output_message(count_member(candidate, "index").value_or(0));
    if (msg == nullptr) return;
    if (const std::string_view reason = string_member(candidate, "finishReason"); !reason.empty()) {
      msg->finish_reason.assign(reason.substr(0, 64));
    }
    const Json* c = object_member(candidate, "content");
    if (const Json* parts = c != nullptr ? array_member(*c, "parts") : nullptr) {
      gemini_parts(out_, *msg, *parts);
    }
  }
}

}  // namespace tokentap

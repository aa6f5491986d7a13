// Prompt and completion content of one LLM exchange, for traces that capture content (the
// OpenTelemetry GenAI `gen_ai.system_instructions`, `gen_ai.input.messages` and
// `gen_ai.output.messages`). Only built when content capture is on for the request: LlmParser
// creates a ContentCapture on capture_content() and hands it the request body and every parsed
// response member or stream event it already sees. Pure, like the parsers: no I/O.
//
// Bounded: the text kept (contents, tool arguments and responses, names and ids) is at most
// `max_bytes` per side (input, output), cut at a UTF-8 boundary; once a side is full it stops
// growing and says it was truncated, so a long stream never buffers more than that. Binary
// content (images, audio, files) is recorded as a part of its type without its data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/endpoint.h"

namespace tokentap {

// A GenAI message part: "text", "reasoning", "tool_call" (content: the arguments as sent),
// "tool_call_response" (content: the response) or another type recorded by name only.
struct ContentPart {
  std::string type;
  std::string id;    // tool call id, when the provider gave one
  std::string name;  // tool name
  std::string content;
};

struct ContentMessage {
  std::string role;  // "system", "user", "assistant", "tool" (or the provider's own)
  std::vector<ContentPart> parts;
  std::string finish_reason;  // output messages
};

struct CapturedContent {
  std::vector<ContentPart> system;     // instructions given apart from the messages
  std::vector<ContentMessage> input;   // the request's messages
  std::vector<ContentMessage> output;  // one per choice / candidate
  bool input_truncated = false;
  bool output_truncated = false;
};

class ContentCapture {
 public:
  ContentCapture(const Endpoint& endpoint, size_t max_bytes);

  // The whole request body (JSON); parsed once more, only when capture is on.
  void on_request(std::string_view body);
  // A member of a non-streamed JSON response, or a stream event (see LlmParser).
  void on_member(std::string_view key, const nlohmann::json& value);
  void on_event(std::string_view sse_type, const nlohmann::json& data);

  const CapturedContent& content() const { return content_; }
  CapturedContent take() { return std::move(content_); }

 private:
  struct Side {
    std::vector<ContentMessage>* messages;
    size_t used = 0;
    bool* truncated;
  };

  // Keeps what fits of `text` in the side's budget; false once the side is full.
  bool fit(Side& side, std::string_view text, std::string& into);
  ContentMessage* message(Side& side, std::string_view role);
  ContentMessage* output_message(uint64_t index);
  // Appends text of `type` to the newest part of that type in `msg`, else a new part.
  void append(Side& side, ContentMessage& msg, std::string_view type, std::string_view text,
              bool merge);
  void add_part(Side& side, ContentMessage& msg, std::string_view type, std::string_view id,
                std::string_view name, std::string_view content);
  void add_system(std::string_view text);

  void openai_chat_input(const nlohmann::json& body);
  void responses_input(const nlohmann::json& body);
  void anthropic_input(const nlohmann::json& body);
  void gemini_input(const nlohmann::json& body);
  void content_parts(Side& side, ContentMessage& msg, const nlohmann::json& content);
  void gemini_parts(Side& side, ContentMessage& msg, const nlohmann::json& parts);

  void openai_choices(const nlohmann::json& choices, bool streaming);
  void responses_output_item(const nlohmann::json& item);
  void responses_event(std::string_view type, const nlohmann::json& data);
  void anthropic_block(const nlohmann::json& block);
  void anthropic_event(std::string_view type, const nlohmann::json& data);
  void gemini_candidates(const nlohmann::json& candidates);

  Endpoint endpoint_;
  size_t max_bytes_;
  CapturedContent content_;
  Side in_;
  Side out_;
  std::vector<uint64_t> output_index_;  // choice / candidate index of each output message
  // OpenAI chat stream: (choice << 32 | tool call index) -> position of its part.
  std::vector<std::pair<uint64_t, size_t>> stream_calls_;
};

}  // namespace tokentap

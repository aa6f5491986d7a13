// LlmParser turns one LLM API exchange into LlmFacts. It only eats bytes: no I/O, no clock, no
// metrics, and no exception ever leaves it. One instance per request, used in this order:
//
//   auto p = LlmParser::create(provider, method, target);
//   p->on_request_headers(headers);          // optional
//   p->on_request_body(whole_json_body);     // once, the whole body
//   p->on_response_headers(status, headers);
//   p->feed(chunk) ...                       // response body bytes as they arrive, still
//                                            // content-encoded, split anywhere
//   p->finish();                             // at the end of the body, or when it was cut
//   use p->facts()
//
// Headers are any range of objects with `name` and `value` members convertible to
// std::string_view (the proxy's HeaderList works as is). Memory stays bounded whatever the body
// size: streams are consumed event by event, and a JSON event, array element or body member
// longer than ParserLimits::max_json_bytes is skipped and counted as a parse error when it was
// needed. Malformed input is counted in facts().parse_errors, never thrown.
//
// Since a parser has no clock, feed() says when the first content-bearing stream event (the
// first generated token, text or tool-call delta) completed inside that call; the proxy reads
// its clock then for time-to-first-token, and on every `content` feed for the last token.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string_view>

#include "parsers/endpoint.h"
#include "parsers/json_doc.h"
#include "parsers/json_splitter.h"
#include "parsers/llm_facts.h"
#include "parsers/response_headers.h"
#include "parsers/sse.h"

namespace tokentap {

class ContentCapture;
class ContentDecoder;
struct CapturedContent;

struct ParserLimits {
  size_t max_json_bytes = 4u << 20;       // largest JSON event, array element or body member parsed
  size_t decode_chunk_bytes = 64u << 10;  // decoded bytes handed on per step
};

struct FeedResult {
  bool content = false;        // a content-bearing stream event completed in this call
  bool first_content = false;  // ... and it was the first one of the response
};

class LlmParser {
 public:
  // Picks the parser for the request's wire format (see classify_endpoint()). `provider` is
  // the route's configured provider, or nullopt to detect it from the target. Returns nullptr
  // only when allocation fails.
  static std::unique_ptr<LlmParser> create(std::optional<ApiProvider> provider,
                                           std::string_view method, std::string_view target,
                                           const ParserLimits& limits = {});
  virtual ~LlmParser();
  LlmParser(const LlmParser&) = delete;
  LlmParser& operator=(const LlmParser&) = delete;

  template <class Headers>
  void on_request_headers(const Headers& headers) {
    for (const auto& h : headers) request_header(h.name, h.value);
  }
  // The whole request body, once. A Content-Encoding'd request body is not parsed.
  void on_request_body(std::string_view body);

  template <class Headers>
  void on_response_headers(int status, const Headers& headers) {
    begin_response(status);
    for (const auto& h : headers) response_header(h.name, h.value);
    end_response_headers();
  }
  FeedResult feed(std::string_view chunk);
  // Ends the response; idempotent. Counts a body cut inside an event, a JSON value or a
  // compressed stream as `truncated`, and classifies the provider error.
  void finish();

  const LlmFacts& facts() const { return facts_; }

  // Content capture for traces (parsers/content_capture.h), off unless called: from now on the
  // request body and the response's members and events are also kept as content, at most
  // `max_bytes` per side. Call before on_request_body() to capture the input.
  void capture_content(size_t max_bytes);
  // The captured content, moved out; empty when capture was never turned on.
  CapturedContent take_content();

  // One-header-at-a-time forms of the templates above.
  void request_header(std::string_view name, std::string_view value);
  void begin_response(int status);
  void response_header(std::string_view name, std::string_view value);
  void end_response_headers();

 protected:
  using Json = json_util::JsonNode;

  LlmParser(const Endpoint& endpoint, const ParserLimits& limits);

  // The whole request body (a JSON object, not yet validated).
  virtual void parse_request(std::string_view body) = 0;
  // A member of a non-streamed JSON response object: wants_member() decides which ones are
  // parsed at all; on_member() gets the parsed value of each wanted one.
  virtual bool wants_member(std::string_view key) const = 0;
  virtual void on_member(std::string_view key, const Json& value) = 0;
  // A stream event whose data is JSON: an SSE event (`sse_type` is its event field, or
  // "message"), or an element of a streamed JSON array (`sse_type` empty).
  virtual void on_event(std::string_view sse_type, const Json& data) = 0;
  // SSE data that is not a JSON object or array, such as OpenAI's "[DONE]". The default
  // counts it as invalid JSON.
  virtual void on_text_event(std::string_view sse_type, std::string_view data);
  // The response ended (complete or not), before error classification.
  virtual void on_end() {}

  const Endpoint& endpoint() const { return endpoint_; }
  bool is_sse() const { return framing_ == Framing::sse; }
  LlmFacts& mutable_facts() { return facts_; }
  // In parse_request(): the body holds a string only tool results carry (marks_tool_result()).
  bool request_names_tool_results() const { return request_names_tool_results_; }

  void note_content();  // a content-bearing stream event was seen
  // Generated text, thinking or tool-call arguments received in a stream event, counted for
  // estimating the output of a stream cut before its usage (LlmFacts::generated_text_bytes).
  void note_generated_text(std::string_view text);
  void mark_complete() { facts_.response_complete = true; }
  void count_parse_error(ParseErrorKind kind);
  // Counts one call of tool `name` (empty: "unknown"); the proxy labels it with `kind`.
  void add_tool_call(std::string_view name, ToolKind kind = ToolKind::function);
  // Remembers a call of kind `function` the response hands the client (LlmFacts::
  // tool_call_refs) and returns its index there, or kNoToolRef past kMaxToolCallRefs.
  // `arguments` starts its hash; a stream adds later pieces with add_tool_arguments().
  static constexpr size_t kNoToolRef = static_cast<size_t>(-1);
  size_t add_tool_call_ref(std::string_view call_id, std::string_view name,
                           std::string_view arguments = {});
  void add_tool_arguments(size_t ref, std::string_view arguments);
  void set_response_model(std::string_view model);
  void set_requested_model(std::string_view model);  // unless the path named it
  void set_finish_reason(std::string_view reason);
  // Keeps the first error reported; later ones do not overwrite it.
  void set_error(std::string_view type, std::string_view code, std::string_view message);

 private:
  enum class Framing { none, sse, json };

  void consume(std::string_view bytes);
  void handle_sse(const SseEvent& event);
  void handle_part(const JsonPart& part);

  Endpoint endpoint_;
  ParserLimits limits_;
  LlmFacts facts_;
  ResponseHeaderReader header_reader_;
  bool request_encoded_ = false;
  bool request_seen_ = false;
  bool request_names_tool_results_ = false;

  std::string content_type_;
  std::string content_encoding_;
  Framing framing_ = Framing::none;
  std::unique_ptr<ContentDecoder> decoder_;
  std::optional<SseDecoder> sse_;
  std::optional<JsonSplitter> splitter_;
  json_util::JsonDoc doc_;  // each event and member is read into it, reusing its memory
  bool broken_ = false;     // unrecoverable framing or decoding error: ignore further bytes
  // Broken by what a content decoder produced: keep decoding (without parsing) until the end,
  // because corrupt compressed data, if that is what it was, is the error to report. Where the
  // decoded garbage first fails to parse depends on how the body was split; this does not.
  bool awaiting_decode_check_ = false;
  std::array<uint32_t, kParseErrorKindCount> errors_at_break_{};
  void drain_decoder(std::string_view chunk);
  bool saw_body_ = false;
  bool finished_ = false;
  bool content_in_feed_ = false;
  std::unique_ptr<ContentCapture> capture_;  // null unless capture_content() was called
};

}  // namespace tokentap

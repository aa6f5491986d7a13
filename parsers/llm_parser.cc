#include "parsers/llm_parser.h"

#include <nlohmann/json.hpp>

#include "common/text.h"
#include "parsers/content_capture.h"
#include "parsers/content_decoder.h"
#include "parsers/json_strings.h"
#include "parsers/json_util.h"
#include "parsers/provider_parsers.h"
#include "parsers/tool_results.h"
#include "parsers/usage_estimate.h"

namespace tokentap {
namespace {

constexpr size_t kMaxToolNames = 64;
constexpr size_t kMaxHeaderValueBytes = 256;

}  // namespace

std::unique_ptr<LlmParser> LlmParser::create(std::optional<ApiProvider> provider,
                                             std::string_view method, std::string_view target,
                                             const ParserLimits& limits) {
  try {
    const Endpoint endpoint = classify_endpoint(provider, method, target);
    switch (endpoint.format) {
      case WireFormat::openai:
        return make_openai_parser(endpoint, limits);
      case WireFormat::anthropic:
        return make_anthropic_parser(endpoint, limits);
      case WireFormat::gemini:
        return make_gemini_parser(endpoint, limits);
    }
  } catch (...) {
    // Only allocation can fail here; the caller proxies without metering.
  }
  return nullptr;
}

LlmParser::LlmParser(const Endpoint& endpoint, const ParserLimits& limits)
    : endpoint_(endpoint), limits_(limits) {
  facts_.provider = endpoint.provider;
  facts_.operation = endpoint.operation;
  facts_.requested_model = endpoint.path_model;
  facts_.stream = endpoint.path_stream;
}

LlmParser::~LlmParser() = default;

void LlmParser::request_header(std::string_view name, std::string_view value) {
  if (iequals(name, "content-encoding") &&
      parse_content_encoding(value) != ContentEncoding::identity) {
    request_encoded_ = true;
  }
}

void LlmParser::on_request_body(std::string_view body) {
  const bool first = !request_seen_;
  request_seen_ = true;
  if (!first || request_encoded_ || body.empty()) return;
  // One pass over the body's strings answers the whole-body questions (prompt text for a cut
  // stream's estimate, whether tool results are worth parsing) before the provider's parse.
  PromptTextCounter prompt;
  bool tool_results = false;
  const ApiProvider provider = endpoint_.provider;
  json_util::for_each_string(body, [&](std::string_view raw, bool is_key) {
    prompt.add(raw, is_key);
    tool_results = tool_results || marks_tool_result(provider, raw, is_key);
  });
  facts_.request_text_bytes = prompt.bytes();
  request_names_tool_results_ = tool_results;
  try {
    parse_request(body);
    if (capture_) capture_->on_request(body);
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
  }
}

void LlmParser::begin_response(int status) {
  facts_.http_status = status;
  content_type_.clear();
  content_encoding_.clear();
}

void LlmParser::response_header(std::string_view name, std::string_view value) {
  try {
    if (iequals(name, "content-type")) {
      content_type_ = to_lower(value.substr(0, kMaxHeaderValueBytes));
    } else if (iequals(name, "content-encoding")) {
      content_encoding_.assign(value.substr(0, kMaxHeaderValueBytes));
    } else {
      header_reader_.read(name, value, facts_);
    }
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
  }
}

void LlmParser::end_response_headers() {
  try {
    const int status = facts_.http_status;
    if (status < 200 || status == 204 || status == 304) return;
    const bool sse_type = content_type_.find("text/event-stream") != std::string::npos;
    const bool json_type = content_type_.find("json") != std::string::npos;
    const bool json_array_stream = endpoint_.format == WireFormat::gemini && !endpoint_.sse;
    // An HTML or plain-text error page from something in between is not parsed.
    if (!sse_type && !json_type && status >= 400) return;
    // Without a content type, a requested stream is taken to be SSE.
    const bool sse = sse_type || (!json_type && facts_.stream && !json_array_stream);
    framing_ = sse ? Framing::sse : Framing::json;
    const ContentEncoding encoding = parse_content_encoding(content_encoding_);
    if (encoding == ContentEncoding::unsupported) {
      count_parse_error(ParseErrorKind::unsupported_encoding);
      framing_ = Framing::none;
      return;
    }
    if (encoding != ContentEncoding::identity) {
      decoder_ = std::make_unique<ContentDecoder>(encoding, limits_.decode_chunk_bytes);
    }
    if (framing_ == Framing::sse) {
      sse_.emplace(limits_.max_json_bytes);
      facts_.stream = true;
    } else {
      splitter_.emplace(limits_.max_json_bytes,
                        [this](std::string_view key) { return wants_member(key); });
    }
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
    framing_ = Framing::none;
  }
}

FeedResult LlmParser::feed(std::string_view chunk) {
  FeedResult result;
  if (finished_ || framing_ == Framing::none || chunk.empty()) return result;
  if (broken_) {
    if (awaiting_decode_check_) drain_decoder(chunk);
    return result;
  }
  const uint32_t content_before = facts_.content_events;
  content_in_feed_ = false;
  saw_body_ = true;
  try {
    if (decoder_ == nullptr) {
      consume(chunk);
    } else {
      std::string_view decoded;
      for (;;) {
        const ContentDecoder::Status s = decoder_->next(chunk, decoded);
        if (s == ContentDecoder::Status::output) {
          const auto errors_before = facts_.parse_errors;
          consume(decoded);
          if (!broken_) continue;
          // Bytes decoded just before corrupt compressed data are often garbage themselves.
          errors_at_break_ = errors_before;
          awaiting_decode_check_ = true;
          drain_decoder(chunk);
          break;
        }
        if (s == ContentDecoder::Status::error) {
          count_parse_error(ParseErrorKind::decode_error);
          broken_ = true;
        }
        break;
      }
    }
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
    broken_ = true;
  }
  result.content = content_in_feed_;
  result.first_content = content_in_feed_ && content_before == 0;
  return result;
}

void LlmParser::drain_decoder(std::string_view chunk) {
  std::string_view ignored;
  for (;;) {
    const ContentDecoder::Status s = decoder_->next(chunk, ignored);
    if (s == ContentDecoder::Status::output) continue;
    if (s == ContentDecoder::Status::error) {
      facts_.parse_errors = errors_at_break_;
      count_parse_error(ParseErrorKind::decode_error);
      awaiting_decode_check_ = false;
    }
    // need_input, or end: bytes after the end, in a later chunk, are still an error.
    return;
  }
}

void LlmParser::consume(std::string_view bytes) {
  if (framing_ == Framing::sse) {
    SseEvent event;
    while (sse_->next(bytes, event)) handle_sse(event);
    return;
  }
  JsonPart part;
  for (;;) {
    const JsonSplitter::Status s = splitter_->next(bytes, part);
    if (s == JsonSplitter::Status::part) {
      handle_part(part);
      continue;
    }
    if (s == JsonSplitter::Status::error) {
      count_parse_error(ParseErrorKind::invalid_json);
      broken_ = true;
    }
    return;
  }
}

void LlmParser::handle_sse(const SseEvent& event) {
  if (event.oversized) {
    count_parse_error(ParseErrorKind::oversized);
    return;
  }
  const std::string_view data = trim(event.data, kJsonWhitespace);
  if (data.empty()) return;
  if (data.front() != '{' && data.front() != '[') {
    on_text_event(event.type, data);
    return;
  }
  const Json* parsed = doc_.parse(data);
  if (parsed == nullptr) {
    // "[DONE]" looks like an array until it fails to parse as one.
    if (data.front() == '[') {
      on_text_event(event.type, data);
    } else {
      count_parse_error(ParseErrorKind::invalid_json);
    }
    return;
  }
  on_event(event.type, *parsed);
  if (capture_) capture_->on_event(event.type, json_util::to_dom(*parsed));
}

void LlmParser::handle_part(const JsonPart& part) {
  const bool element = splitter_->shape() == JsonSplitter::Shape::array;
  if (part.oversized) {
    count_parse_error(ParseErrorKind::oversized);
    return;
  }
  const Json* parsed = doc_.parse(part.value);
  if (parsed == nullptr) {
    count_parse_error(ParseErrorKind::invalid_json);
    return;
  }
  if (!element) {
    on_member(part.key, *parsed);
    if (capture_) capture_->on_member(part.key, json_util::to_dom(*parsed));
  } else if (parsed->is_object()) {
    on_event(std::string_view(), *parsed);
    if (capture_) capture_->on_event(std::string_view(), json_util::to_dom(*parsed));
  } else {
    count_parse_error(ParseErrorKind::unexpected_shape);
  }
}

void LlmParser::on_text_event(std::string_view, std::string_view) {
  count_parse_error(ParseErrorKind::invalid_json);
}

void LlmParser::finish() {
  if (finished_) return;
  finished_ = true;
  try {
    if (framing_ != Framing::none && !broken_) {
      bool cut = decoder_ != nullptr && saw_body_ && !decoder_->complete();
      if (sse_.has_value() && !sse_->finish()) cut = true;
      if (splitter_.has_value()) {
        if (splitter_->finish()) {
          mark_complete();
        } else if (splitter_->started()) {
          cut = true;
        }
      }
      if (cut) count_parse_error(ParseErrorKind::truncated);
    }
    on_end();
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
  }
  if (facts_.error.present() || facts_.http_status >= 400) {
    facts_.error.http_status = facts_.http_status;
  }
  facts_.error_class = classify_provider_error(facts_.http_status, facts_.error);
}

void LlmParser::capture_content(size_t max_bytes) {
  if (capture_ || max_bytes == 0) return;
  try {
    capture_ = std::make_unique<ContentCapture>(endpoint_, max_bytes);
  } catch (...) {
    count_parse_error(ParseErrorKind::internal);
  }
}

CapturedContent LlmParser::take_content() {
  return capture_ ? capture_->take() : CapturedContent{};
}

void LlmParser::note_content() {
  content_in_feed_ = true;
  ++facts_.content_events;
}

void LlmParser::note_generated_text(std::string_view text) {
  facts_.generated_text_bytes += text.size();
}

void LlmParser::count_parse_error(ParseErrorKind kind) {
  ++facts_.parse_errors[static_cast<size_t>(kind)];
}

void LlmParser::add_tool_call(std::string_view name, ToolKind kind) {
  std::string clean = json_util::clean_label(name);
  if (clean.empty()) clean = "unknown";
  auto count_existing = [&](const std::string& n) {
    for (ToolCallCount& t : facts_.tool_calls) {
      if (t.name == n && t.kind == kind) {
        ++t.count;
        return true;
      }
    }
    return false;
  };
  if (count_existing(clean)) return;
  if (facts_.tool_calls.size() + 2 >= kMaxToolNames) {
    // Keep the list bounded; the last slots (one per kind) collect every further name.
    clean = "other";
    if (count_existing(clean)) return;
  }
  facts_.tool_calls.push_back({std::move(clean), 1, kind});
}

size_t LlmParser::add_tool_call_ref(std::string_view call_id, std::string_view name,
                                    std::string_view arguments) {
  std::vector<ToolCallRef>& refs = facts_.tool_call_refs;
  if (refs.size() >= kMaxToolCallRefs) return kNoToolRef;
  std::string clean = json_util::clean_label(name);
  refs.push_back({.call_id = call_id.empty() ? std::string()
                                             : json_util::clean_label(call_id, kMaxToolRefBytes),
                  .name = clean.empty() ? "unknown" : std::move(clean),
                  .arguments_hash = hash_tool_arguments(kToolArgumentsHashSeed, arguments)});
  return refs.size() - 1;
}

void LlmParser::add_tool_arguments(size_t ref, std::string_view arguments) {
  if (ref >= facts_.tool_call_refs.size()) return;
  uint64_t& hash = facts_.tool_call_refs[ref].arguments_hash;
  hash = hash_tool_arguments(hash, arguments);
}

void LlmParser::set_response_model(std::string_view model) {
  // Streams repeat the model in every event; clean_label() keeps a clean label as it is.
  if (!model.empty() && model != facts_.response_model) {
    facts_.response_model = json_util::clean_label(model);
  }
}

void LlmParser::set_requested_model(std::string_view model) {
  if (endpoint_.path_model.empty() && !model.empty()) {
    facts_.requested_model = json_util::clean_label(model);
  }
}

void LlmParser::set_finish_reason(std::string_view reason) {
  if (!reason.empty()) facts_.finish_reason = json_util::clean_label(reason, 64);
}

void LlmParser::set_error(std::string_view type, std::string_view code, std::string_view message) {
  if (facts_.error.present()) return;
  facts_.error.type = json_util::clean_label(type, 64);
  facts_.error.code = json_util::clean_label(code, 64);
  facts_.error.message = json_util::clean_message(message);
}

}  // namespace tokentap

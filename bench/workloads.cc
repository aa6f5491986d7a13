// Synthetic provider traffic for parser_bench: requests and responses shaped like what the
// OpenAI, Anthropic and Gemini SDKs and APIs send, each with the facts a parser must extract.
#define ZLIB_CONST
#include "bench/workloads.h"

#include <zlib.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

namespace tokentap::bench {

using OJson = nlohmann::ordered_json;  // keeps members in the order providers send them

namespace {

// Model output and file contents: mostly ASCII words, with the escapes (quotes, backslashes,
// newlines, tabs) and multi-byte UTF-8 that real text puts in JSON strings.
constexpr std::string_view kWords[] = {
    "the",       "request", "parser",   "stream",   "token",    "usage",      "model",
    "agent",     "tool",    "result",   "returns",  "a",        "of",         "to",
    "and",       "in",      "is",       "with",     "for",      "each",       "event",
    "bytes",     "proxy",   "latency",  "cache",    "function", "value",      "error",
    "retry",     "config",  "upstream", "response", "buffer",   "0.25",       "2048",
    "naïve",     "café",    "→",        "—",        "“ok”",     "\"quoted\"", "C:\\tmp\\x",
    "tab\there", "line\n",  "\n\n",     "```cpp\n", "{",        "}",          "😀"};

std::string prose(Rng& rng, size_t words) {
  std::string out;
  for (size_t i = 0; i < words; ++i) {
    if (i > 0) out += ' ';
    out += rng.pick(kWords);
  }
  return out;
}

std::string code_lines(Rng& rng, size_t lines) {
  std::string out;
  for (size_t i = 0; i < lines; ++i) {
    out.append(2 * rng.between(0, 4), ' ');
    out += "auto v" + std::to_string(rng.between(0, 999)) + " = " + prose(rng, rng.between(2, 8));
    out += ";\n";
  }
  return out;
}

// ASCII letters and spaces only: every byte lands in the JSON text as exactly one byte.
std::string filler(size_t bytes) {
  constexpr std::string_view kText = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
  std::string out;
  while (out.size() < bytes) out += kText.substr(0, std::min(kText.size(), bytes - out.size()));
  return out;
}

std::string random_id(Rng& rng, std::string_view prefix, size_t length) {
  constexpr std::string_view kAlnum =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out(prefix);
  for (size_t i = 0; i < length; ++i) out += kAlnum[rng.between(0, kAlnum.size() - 1)];
  return out;
}

}  // namespace

// Pieces of 1-4 KiB, the sizes a proxy reads from a TLS stream.
Pieces split(std::string_view body, Rng& rng) {
  Pieces pieces;
  while (!body.empty()) {
    const size_t n = std::min(body.size(), rng.between(1024, 4096));
    pieces.push_back(body.substr(0, n));
    body.remove_prefix(n);
  }
  return pieces;
}

// Gzip as a streaming server sends it: a sync flush after every event, so each event can be
// decoded as soon as it arrives.
std::string gzip_per_event(std::string_view body) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    die("deflateInit2 failed");
  }
  std::string out;
  char buffer[16384];
  auto compress = [&](std::string_view in, int flush) {
    zs.next_in = reinterpret_cast<const Bytef*>(in.data());
    zs.avail_in = static_cast<uInt>(in.size());
    do {
      zs.next_out = reinterpret_cast<Bytef*>(buffer);
      zs.avail_out = sizeof buffer;
      const int rc = deflate(&zs, flush);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) die("deflate failed");
      out.append(buffer, sizeof buffer - zs.avail_out);
    } while (zs.avail_out == 0);
  };
  while (!body.empty()) {
    const size_t end = body.find("\n\n");
    const size_t n = end == std::string_view::npos ? body.size() : end + 2;
    compress(body.substr(0, n), Z_SYNC_FLUSH);
    body.remove_prefix(n);
  }
  compress({}, Z_FINISH);
  deflateEnd(&zs);
  return out;
}

namespace {

struct ToolSpec {
  std::string_view name;
  std::string_view description;
  std::vector<std::pair<std::string_view, std::string_view>> params;  // name, JSON type
};

const std::vector<ToolSpec>& tool_specs() {
  static const std::vector<ToolSpec> specs = {
      {"read_file",
       "Read a file from the workspace, optionally a line range.",
       {{"path", "string"}, {"offset", "integer"}, {"limit", "integer"}}},
      {"write_file",
       "Create or overwrite a file in the workspace.",
       {{"path", "string"}, {"content", "string"}}},
      {"run_tests",
       "Run the test suite, or the tests matching a pattern.",
       {{"pattern", "string"}, {"timeout_s", "integer"}}},
      {"search_code",
       "Search the repository for a regular expression.",
       {{"query", "string"}, {"path", "string"}, {"max_results", "integer"}}},
      {"list_directory",
       "List the entries of a directory.",
       {{"path", "string"}, {"recursive", "boolean"}}},
      {"run_shell",
       "Run a shell command in the workspace and return its output.",
       {{"command", "string"}, {"cwd", "string"}, {"timeout_s", "integer"}}},
      {"http_get",
       "Fetch a URL and return the response body as text.",
       {{"url", "string"}, {"headers", "object"}}},
      {"get_weather",
       "Get the current weather for a location.",
       {{"location", "string"}, {"unit", "string"}}},
  };
  return specs;
}

OJson input_schema(const ToolSpec& spec) {
  OJson properties = OJson::object();
  for (const auto& [name, type] : spec.params) {
    properties[std::string(name)] = {{"type", type},
                                     {"description", "The " + std::string(name) + " to use."}};
  }
  return {{"type", "object"},
          {"properties", properties},
          {"required", {spec.params.front().first}},
          {"additionalProperties", false}};
}

OJson tool_arguments(Rng& rng, const ToolSpec& spec) {
  OJson args = OJson::object();
  for (const auto& [name, type] : spec.params) {
    if (type == "integer") {
      args[std::string(name)] = rng.between(1, 5000);
    } else if (type == "string") {
      args[std::string(name)] = "src/module_" + std::to_string(rng.between(0, 99)) + ".cc";
    }
  }
  return args;
}

// Which facts a run must reproduce, as one comparable line.
std::string summary(const LlmFacts& f) {
  const TokenUsage& u = f.usage;
  std::string s = "model=" + f.requested_model + " stream=" + std::to_string(f.stream) +
                  " stream_options=" + std::to_string(f.stream_options_present) +
                  " usage{present=" + std::to_string(u.present) + " in=" + std::to_string(u.input) +
                  " out=" + std::to_string(u.output) +
                  " cache_read=" + std::to_string(u.cache_read) +
                  " cache_write=" + std::to_string(u.cache_write) +
                  " reasoning=" + std::to_string(u.reasoning) + "} finish=" + f.finish_reason +
                  " complete=" + std::to_string(f.response_complete) +
                  " content_events=" + std::to_string(f.content_events) +
                  " parse_errors=" + std::to_string(f.parse_error_count()) + " tool_calls=[";
  for (const ToolCallCount& t : f.tool_calls) s += t.name + "x" + std::to_string(t.count) + " ";
  s += "] tool_results=[";
  for (const ToolResultCount& t : f.tool_results) {
    s += t.tool + "/" + tool_result_status(t) + "x" + std::to_string(t.count) + " ";
  }
  return s + "]";
}

}  // namespace

size_t tool_spec_count() { return tool_specs().size(); }

std::string compare_facts(const LlmParser* parser, const LlmFacts& expected) {
  if (parser == nullptr) return "no parser was created";
  const std::string got = summary(parser->facts());
  const std::string want = summary(expected);
  return got == want ? std::string() : "got " + got + "\n  expected " + want;
}

namespace {

// Appends turns from `next_turn` (each an array of messages) to body["messages"] while they fit
// in `target` bytes together with `last_turn`, then `last_turn`, and fills the empty string at
// `pad` in its final message so that the body is exactly `target` bytes.
template <class NextTurn>
std::string build_to_size(OJson& body, size_t target, NextTurn next_turn, const OJson& last_turn,
                          const OJson::json_pointer& pad) {
  OJson& messages = body["messages"];
  // A turn's own dump ("[a,b]") is one byte longer than what appending it adds (",a,b"), so
  // `bound` never underestimates.
  size_t bound = body.dump().size() + last_turn.dump().size();
  for (;;) {
    OJson turn = next_turn();
    const size_t turn_bytes = turn.dump().size();
    if (bound + turn_bytes > target) break;
    bound += turn_bytes;
    for (OJson& message : turn) messages.push_back(std::move(message));
  }
  for (const OJson& message : last_turn) messages.push_back(message);
  const size_t size = body.dump().size();
  if (size > target) die("request generator overshot its target size");
  messages.back()[pad] = filler(target - size);
  std::string text = body.dump();
  if (text.size() != target) die("request generator missed its target size");
  return text;
}

}  // namespace

// An agent's chat/completions request as the OpenAI Python SDK serializes it: the conversation
// so far (user asks, assistant calls tools, tool messages carry file contents and command
// output), then model, stream and the tool definitions.
RequestWorkload openai_request(size_t target, Rng& rng) {
  const auto& specs = tool_specs();
  OJson body = {{"messages", OJson::array()},  {"model", "gpt-4o"},
                {"parallel_tool_calls", true}, {"stream", true},
                {"temperature", 0.2},          {"tool_choice", "auto"},
                {"tools", OJson::array()}};
  for (const ToolSpec& spec : specs) {
    body["tools"].push_back({{"type", "function"},
                             {"function",
                              {{"name", spec.name},
                               {"description", spec.description},
                               {"parameters", input_schema(spec)}}}});
  }
  body["messages"].push_back({{"role", "system"}, {"content", prose(rng, 300)}});
  auto next_turn = [&] {
    OJson turn = OJson::array();
    turn.push_back({{"role", "user"}, {"content", prose(rng, rng.between(20, 80))}});
    OJson calls = OJson::array();
    std::vector<OJson> results;
    for (size_t i = rng.between(1, 3); i > 0; --i) {
      const ToolSpec& spec = specs[rng.between(0, specs.size() - 1)];
      const std::string id = random_id(rng, "call_", 24);
      calls.push_back(
          {{"id", id},
           {"type", "function"},
           {"function", {{"name", spec.name}, {"arguments", tool_arguments(rng, spec).dump()}}}});
      results.push_back({{"role", "tool"},
                         {"tool_call_id", id},
                         {"content", code_lines(rng, rng.between(10, 60))}});
    }
    turn.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}});
    for (OJson& r : results) turn.push_back(std::move(r));
    turn.push_back({{"role", "assistant"}, {"content", prose(rng, rng.between(30, 150))}});
    return turn;
  };
  const OJson last_turn = {{{"role", "user"}, {"content", ""}}};
  RequestWorkload w;
  w.provider = ApiProvider::openai;
  w.target = "/v1/chat/completions";
  w.body = build_to_size(body, target, next_turn, last_turn, OJson::json_pointer("/content"));
  w.messages = body["messages"].size();
  w.expected.requested_model = "gpt-4o";
  w.expected.stream = true;
  return w;
}

// A Messages request in the middle of an agent loop: assistant turns with tool_use blocks,
// user turns answering them with tool_result blocks (text or block-list content, some errors).
// The newest user turn answers read_file twice and a failed run_tests.
RequestWorkload anthropic_request(size_t target, Rng& rng) {
  const auto& specs = tool_specs();
  OJson body = {
      {"max_tokens", 8192}, {"messages", OJson::array()}, {"model", "claude-sonnet-4-5-20250929"},
      {"stream", true},     {"system", prose(rng, 300)},  {"tools", OJson::array()}};
  for (const ToolSpec& spec : specs) {
    body["tools"].push_back({{"name", spec.name},
                             {"description", spec.description},
                             {"input_schema", input_schema(spec)}});
  }
  body["messages"].push_back(
      {{"role", "user"}, {"content", {{{"type", "text"}, {"text", prose(rng, 120)}}}}});
  // An assistant message using `used` tools and the user message with their results.
  auto tool_turn = [&](const std::vector<const ToolSpec*>& used, const std::vector<bool>& errors) {
    OJson uses = {{{"type", "text"}, {"text", prose(rng, rng.between(10, 60))}}};
    OJson results = OJson::array();
    for (size_t i = 0; i < used.size(); ++i) {
      const std::string id = random_id(rng, "toolu_01", 22);
      uses.push_back({{"type", "tool_use"},
                      {"id", id},
                      {"name", used[i]->name},
                      {"input", tool_arguments(rng, *used[i])}});
      OJson result = {{"type", "tool_result"}, {"tool_use_id", id}};
      if (rng.between(0, 1) == 0) {
        result["content"] = code_lines(rng, rng.between(10, 60));
      } else {
        result["content"] = {{{"type", "text"}, {"text", code_lines(rng, rng.between(10, 60))}}};
      }
      if (errors[i]) result["is_error"] = true;
      results.push_back(std::move(result));
    }
    return OJson::array({OJson{{"role", "assistant"}, {"content", uses}},
                         OJson{{"role", "user"}, {"content", results}}});
  };
  auto next_turn = [&] {
    std::vector<const ToolSpec*> used;
    std::vector<bool> errors;
    for (size_t i = rng.between(1, 3); i > 0; --i) {
      used.push_back(&specs[rng.between(0, specs.size() - 1)]);
      errors.push_back(rng.between(0, 9) == 0);
    }
    return tool_turn(used, errors);
  };
  OJson last_turn = tool_turn({&specs[0], &specs[0], &specs[2]}, {false, false, true});
  last_turn.back()["content"].push_back({{"type", "text"}, {"text", ""}});
  RequestWorkload w;
  w.provider = ApiProvider::anthropic;
  w.target = "/v1/messages";
  w.body =
      build_to_size(body, target, next_turn, last_turn, OJson::json_pointer("/content/3/text"));
  w.messages = body["messages"].size();
  w.expected.requested_model = "claude-sonnet-4-5-20250929";
  w.expected.stream = true;
  w.expected.tool_results = {{"read_file", false, 2}, {"run_tests", true, 1}};
  return w;
}

namespace {

// `text` cut into `parts` pieces of nearly equal size: tool arguments as they stream.
std::vector<std::string> cut(std::string_view text, size_t parts) {
  std::vector<std::string> out;
  for (size_t i = 0; i < parts; ++i) {
    const size_t begin = text.size() * i / parts;
    out.emplace_back(text.substr(begin, text.size() * (i + 1) / parts - begin));
  }
  return out;
}

constexpr std::string_view kToolInput = R"({"pattern": "parsers/*", "timeout_s": 600})";

}  // namespace

// A chat/completions stream with include_usage (as the proxy requests it): a role chunk, text
// deltas, one tool call whose arguments arrive over 40 deltas, the finish chunk, the
// usage-only chunk and [DONE]. `content_events` counts the text and tool-call deltas.
StreamWorkload openai_stream(size_t content_events, Rng& rng) {
  OJson chunk = OJson::parse(R"({"id":"","object":"chat.completion.chunk","created":1739102400,
      "model":"gpt-4o-2024-08-06","service_tier":"default","system_fingerprint":"fp_f9f4fb6dbf",
      "choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":null}],"usage":null})");
  chunk["id"] = random_id(rng, "chatcmpl-", 29);
  StreamWorkload w;
  auto emit = [&](OJson delta, OJson finish_reason = nullptr) {
    chunk["choices"][0]["delta"] = std::move(delta);
    chunk["choices"][0]["finish_reason"] = std::move(finish_reason);
    const std::string event = "data: " + chunk.dump() + "\n\n";
    w.body += event;
    // The client sees each chunk without the "usage":null that include_usage adds.
    OJson seen = chunk;
    seen.erase("usage");
    w.filtered += "data: " + seen.dump() + "\n\n";
    ++w.events;
  };
  const size_t tool_deltas = std::min<size_t>(40, content_events / 4);
  emit({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}});
  for (size_t i = tool_deltas; i < content_events; ++i) {
    emit({{"content", " " + std::string(rng.pick(kWords))}});
  }
  const std::vector<std::string> arguments = cut(kToolInput, tool_deltas);
  for (size_t i = 0; i < tool_deltas; ++i) {
    OJson call = {{"index", 0}};
    if (i == 0) {
      call["id"] = random_id(rng, "call_", 24);
      call["type"] = "function";
      call["function"] = {{"name", "run_tests"}, {"arguments", arguments[i]}};
    } else {
      call["function"] = {{"arguments", arguments[i]}};
    }
    emit({{"tool_calls", {call}}});
  }
  emit(OJson::object(), "tool_calls");
  chunk["choices"] = OJson::array();
  chunk["usage"] = OJson::parse(R"({"prompt_tokens":65432,"completion_tokens":0,
      "total_tokens":0,"prompt_tokens_details":{"cached_tokens":50176,"audio_tokens":0},
      "completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,
      "accepted_prediction_tokens":0,"rejected_prediction_tokens":0}})");
  chunk["usage"]["completion_tokens"] = content_events + 7;
  chunk["usage"]["total_tokens"] = 65432 + content_events + 7;
  w.body += "data: " + chunk.dump() + "\n\ndata: [DONE]\n\n";
  w.filtered += "data: [DONE]\n\n";
  w.events += 2;

  w.provider = ApiProvider::openai;
  w.target = "/v1/chat/completions";
  w.content_type = "text/event-stream; charset=utf-8";
  LlmFacts& e = w.expected;
  e.stream = true;
  e.usage = {.present = true, .input = 65432, .output = content_events + 7, .cache_read = 50176};
  e.finish_reason = "tool_calls";
  e.response_complete = true;
  e.content_events = static_cast<uint32_t>(content_events);
  e.tool_calls = {{"run_tests", 1}};
  return w;
}

// message_start, a ping, a text block, a tool_use block whose input arrives over 40 deltas,
// message_delta with the final usage, message_stop.
StreamWorkload anthropic_stream(size_t content_events, Rng& rng) {
  StreamWorkload w;
  auto emit = [&](std::string_view type, const OJson& data) {
    w.body += "event: " + std::string(type) + "\ndata: " + data.dump() + "\n\n";
    ++w.events;
  };
  auto delta = [](int index, OJson d) {
    return OJson{{"type", "content_block_delta"}, {"index", index}, {"delta", std::move(d)}};
  };
  const size_t json_deltas = std::min<size_t>(40, content_events / 4);
  OJson start = OJson::parse(R"({"type":"message_start","message":{"id":"","type":"message",
      "role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,
      "stop_sequence":null,"usage":{"input_tokens":2103,"cache_creation_input_tokens":1024,
      "cache_read_input_tokens":48000,"output_tokens":1}}})");
  start["message"]["id"] = random_id(rng, "msg_01", 24);
  emit("message_start", start);
  emit("content_block_start", OJson::parse(R"({"type":"content_block_start","index":0,
      "content_block":{"type":"text","text":""}})"));
  emit("ping", {{"type", "ping"}});
  for (size_t i = json_deltas + 1; i < content_events; ++i) {
    emit("content_block_delta",
         delta(0, {{"type", "text_delta"}, {"text", " " + std::string(rng.pick(kWords))}}));
  }
  emit("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
  OJson tool = OJson::parse(R"({"type":"content_block_start","index":1,
      "content_block":{"type":"tool_use","id":"","name":"run_tests","input":{}}})");
  tool["content_block"]["id"] = random_id(rng, "toolu_01", 22);
  emit("content_block_start", tool);
  for (const std::string& part : cut(kToolInput, json_deltas)) {
    emit("content_block_delta", delta(1, {{"type", "input_json_delta"}, {"partial_json", part}}));
  }
  emit("content_block_stop", {{"type", "content_block_stop"}, {"index", 1}});
  OJson end = OJson::parse(R"({"type":"message_delta",
      "delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":0}})");
  end["usage"]["output_tokens"] = content_events + 3;
  emit("message_delta", end);
  emit("message_stop", {{"type", "message_stop"}});

  w.provider = ApiProvider::anthropic;
  w.target = "/v1/messages";
  w.content_type = "text/event-stream; charset=utf-8";
  LlmFacts& e = w.expected;
  e.stream = true;
  e.usage = {.present = true,
             .input = 2103 + 1024 + 48000,
             .output = content_events + 3,
             .cache_read = 48000,
             .cache_write = 1024};
  e.finish_reason = "tool_use";
  e.response_complete = true;
  e.content_events = static_cast<uint32_t>(content_events);
  e.tool_calls = {{"run_tests", 1}};
  return w;
}

// streamGenerateContent without alt=sse: one pretty-printed JSON array, an element per chunk,
// each with running usageMetadata; the last one carries finishReason.
StreamWorkload gemini_stream(size_t chunks, Rng& rng) {
  OJson element = OJson::parse(R"({"candidates":[{"content":{"parts":[{"text":""}],
      "role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":9120,
      "candidatesTokenCount":0,"totalTokenCount":0,"promptTokensDetails":[{"modality":"TEXT",
      "tokenCount":9120}],"thoughtsTokenCount":600},"modelVersion":"models/gemini-2.5-pro",
      "responseId":""})");
  element["responseId"] = random_id(rng, "", 23);
  StreamWorkload w;
  uint64_t candidates_tokens = 0;
  w.body = "[";
  for (size_t i = 0; i < chunks; ++i) {
    const size_t words = rng.between(5, 25);
    candidates_tokens += words;
    element["candidates"][0]["content"]["parts"][0]["text"] = prose(rng, words);
    if (i + 1 == chunks) element["candidates"][0]["finishReason"] = "STOP";
    element["usageMetadata"]["candidatesTokenCount"] = candidates_tokens;
    element["usageMetadata"]["totalTokenCount"] = 9120 + 600 + candidates_tokens;
    if (i > 0) w.body += "\n,\r\n";
    w.body += element.dump(2);
    ++w.events;
  }
  w.body += "\n]";

  w.provider = ApiProvider::gemini;
  w.target = "/v1beta/models/gemini-2.5-pro:streamGenerateContent";
  w.content_type = "application/json; charset=UTF-8";
  LlmFacts& e = w.expected;
  e.requested_model = "gemini-2.5-pro";
  e.stream = true;
  e.usage = {.present = true, .input = 9120, .output = candidates_tokens + 600, .reasoning = 600};
  e.finish_reason = "STOP";
  e.response_complete = true;
  e.content_events = static_cast<uint32_t>(chunks);
  return w;
}

std::unique_ptr<LlmParser> parse_request(const RequestWorkload& w) {
  auto parser = LlmParser::create(w.provider, "POST", w.target);
  if (parser != nullptr) parser->on_request_body(w.body);
  return parser;
}

std::unique_ptr<LlmParser> parse_response(const StreamWorkload& w, const Pieces& pieces,
                                          std::string_view encoding) {
  auto parser = LlmParser::create(w.provider, "POST", w.target);
  if (parser == nullptr) return parser;
  parser->begin_response(200);
  parser->response_header("content-type", w.content_type);
  if (!encoding.empty()) parser->response_header("content-encoding", encoding);
  parser->end_response_headers();
  for (std::string_view piece : pieces) parser->feed(piece);
  parser->finish();
  return parser;
}

}  // namespace tokentap::bench

// Content capture (parsers/content_capture.h) over the golden recordings: the input messages and
// the output text and tool calls per provider, whole and split at every byte, bounded.
#include "parsers/content_capture.h"

#include <catch2/catch.hpp>
#include <string>

#include "common/text.h"
#include "parsers/llm_parser.h"
#include "tests/unit/parsers/golden_support.h"

namespace tokentap {
namespace {

using test::Recording;

const Recording& recording(const std::string& dir, const std::string& name) {
  static std::vector<std::pair<std::string, std::vector<Recording>>> loaded;
  auto it =
      std::find_if(loaded.begin(), loaded.end(), [&](const auto& d) { return d.first == dir; });
  if (it == loaded.end()) {
    loaded.emplace_back(dir, test::load_recordings(std::string(TOKENTAP_GOLDEN_DIR) + "/" + dir));
    it = loaded.end() - 1;
  }
  for (const Recording& r : it->second) {
    if (r.name == dir + "/" + name) return r;
  }
  throw std::runtime_error("no recording " + dir + "/" + name);
}

// Replays `rec` with capture on (max_bytes > 0), fed `step` bytes at a time (0: whole).
CapturedContent capture(const Recording& rec, size_t max_bytes, size_t step = 0) {
  auto parser = LlmParser::create(rec.route_provider, rec.method, rec.target);
  REQUIRE(parser != nullptr);
  parser->on_request_headers(rec.request_headers);
  if (max_bytes > 0) parser->capture_content(max_bytes);
  if (!rec.request_body.empty()) parser->on_request_body(rec.request_body);
  parser->on_response_headers(rec.status, rec.response_headers);
  std::string_view body = rec.response_body;
  if (step == 0) step = body.size() + 1;
  for (size_t pos = 0; pos < body.size(); pos += step) parser->feed(body.substr(pos, step));
  parser->finish();
  return parser->take_content();
}

std::string text_of(const ContentMessage& m, std::string_view type = "text") {
  std::string out;
  for (const ContentPart& p : m.parts) {
    if (p.type == type) out += p.content;
  }
  return out;
}

std::vector<std::string> calls_of(const ContentMessage& m) {
  std::vector<std::string> out;
  for (const ContentPart& p : m.parts) {
    if (p.type == "tool_call") out.push_back(p.name + " " + p.content);
  }
  return out;
}

bool same(const CapturedContent& a, const CapturedContent& b) {
  auto parts_equal = [](const std::vector<ContentPart>& x, const std::vector<ContentPart>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].type != y[i].type || x[i].id != y[i].id || x[i].name != y[i].name ||
          x[i].content != y[i].content) {
        return false;
      }
    }
    return true;
  };
  auto messages_equal = [&](const std::vector<ContentMessage>& x,
                            const std::vector<ContentMessage>& y) {
    if (x.size() != y.size()) return false;
    for (size_t i = 0; i < x.size(); ++i) {
      if (x[i].role != y[i].role || x[i].finish_reason != y[i].finish_reason ||
          !parts_equal(x[i].parts, y[i].parts)) {
        return false;
      }
    }
    return true;
  };
  return parts_equal(a.system, b.system) && messages_equal(a.input, b.input) &&
         messages_equal(a.output, b.output) && a.input_truncated == b.input_truncated &&
         a.output_truncated == b.output_truncated;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

constexpr size_t kCap = 16 << 10;

TEST_CASE("content capture is off unless turned on") {
  const CapturedContent c = capture(recording("openai", "chat_stream_tool_calls"), 0);
  CHECK(c.system.empty());
  CHECK(c.input.empty());
  CHECK(c.output.empty());
}

TEST_CASE("content capture: OpenAI chat, JSON and stream") {
  const CapturedContent json = capture(recording("openai", "chat_nonstream_tool_calls"), kCap);
  REQUIRE(json.output.size() == 1);
  CHECK(json.output[0].role == "assistant");
  CHECK(json.output[0].finish_reason == "tool_calls");
  CHECK(calls_of(json.output[0]) == std::vector<std::string>{R"(get_weather {"city": "Paris"})",
                                                             R"(get_weather {"city": "Tokyo"})"});
  CHECK(json.output[0].parts[0].id == "call_9KpLx2f8QkTz4M1rQbGv7sYd");

  const Recording& rec = recording("openai", "chat_stream_tool_calls");
  const CapturedContent stream = capture(rec, kCap);
  REQUIRE(stream.input.size() == 1);
  CHECK(stream.input[0].role == "user");
  CHECK(text_of(stream.input[0]) == "Weather and time in Paris?");
  REQUIRE(stream.output.size() == 1);
  const auto calls = calls_of(stream.output[0]);
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].starts_with(R"(get_weather {"city": "Paris")"));
  CHECK(calls[1].starts_with(R"(get_time {"timezone": "Europe/Paris")"));
  CHECK(same(stream, capture(rec, kCap, 1)));
  CHECK(same(stream, capture(rec, kCap, 7)));
}

TEST_CASE("content capture: OpenAI Responses input, instructions and output") {
  const CapturedContent json =
      capture(recording("openai", "responses_nonstream_function_call"), kCap);
  REQUIRE(json.input.size() == 1);
  CHECK(text_of(json.input[0]) == "What's the weather in Boston? Use the tool.");
  REQUIRE(json.output.size() == 1);
  CHECK(calls_of(json.output[0]) ==
        std::vector<std::string>{R"(get_weather {"location":"Boston, MA"})"});

  const Recording& rec = recording("openai", "responses_stream_tools");
  const CapturedContent stream = capture(rec, kCap);
  REQUIRE(stream.output.size() == 1);
  CHECK(text_of(stream.output[0]) == "Today in Paris it is sunny.");
  CHECK(same(stream, capture(rec, kCap, 1)));

  Recording with_instructions = rec;
  with_instructions.request_body =
      R"({"model":"gpt-4.1","instructions":"Be terse.","input":[)"
      R"({"role":"user","content":[{"type":"input_text","text":"Hi"},{"type":"input_image"}]},)"
      R"({"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},)"
      R"({"type":"function_call_output","call_id":"c1","output":"42"}],"stream":true})";
  const CapturedContent c = capture(with_instructions, kCap);
  REQUIRE(c.system.size() == 1);
  CHECK(c.system[0].content == "Be terse.");
  REQUIRE(c.input.size() == 3);
  CHECK(text_of(c.input[0]) == "Hi");
  CHECK(c.input[0].parts[1].type == "input_image");
  CHECK(c.input[1].parts[0].type == "tool_call");
  CHECK(c.input[2].role == "tool");
  CHECK(c.input[2].parts[0].type == "tool_call_response");
  CHECK(c.input[2].parts[0].content == "42");
}

TEST_CASE("content capture: Anthropic system, messages and output") {
  const Recording& text = recording("anthropic", "messages_stream_text");
  const CapturedContent c = capture(text, kCap);
  REQUIRE(c.system.size() == 1);
  CHECK(c.system[0].content == "(a long cached system prompt)");
  REQUIRE(c.input.size() == 1);
  CHECK(text_of(c.input[0]) == "Hello");
  REQUIRE(c.output.size() == 1);
  CHECK(text_of(c.output[0]) == "Hello! How can I help?");
  CHECK(same(c, capture(text, kCap, 1)));

  const Recording& tools = recording("anthropic", "messages_stream_tool_use");
  const CapturedContent t = capture(tools, kCap);
  REQUIRE(t.output.size() == 1);
  CHECK(text_of(t.output[0]) == "I'll look that up.");
  REQUIRE(calls_of(t.output[0]).size() == 1);
  CHECK(calls_of(t.output[0])[0].starts_with(R"(get_weather {"location": "San Francisco, CA")"));
  CHECK(same(t, capture(tools, kCap, 3)));

  const CapturedContent json = capture(recording("anthropic", "messages_nonstream_tool_use"), kCap);
  REQUIRE(json.output.size() == 1);
  CHECK(!calls_of(json.output[0]).empty());
}

TEST_CASE("content capture: Gemini contents, systemInstruction and candidates") {
  const Recording& rec = recording("gemini", "stream_sse");
  const CapturedContent c = capture(rec, kCap);
  REQUIRE(c.input.size() == 1);
  CHECK(c.input[0].role == "user");
  CHECK(text_of(c.input[0]) == "Write a pangram and end it.");
  REQUIRE(c.output.size() == 1);
  CHECK(text_of(c.output[0]) == "The quick brown fox jumps over the lazy dog. The end.");
  CHECK(c.output[0].parts.size() == 1);  // stream chunks merged into one text part
  CHECK(same(c, capture(rec, kCap, 1)));

  const CapturedContent call = capture(recording("gemini", "generate_content_function_call"), kCap);
  REQUIRE(call.output.size() == 1);
  REQUIRE(calls_of(call.output[0]).size() == 1);
  CHECK(calls_of(call.output[0])[0].starts_with("get_current_weather {"));

  Recording with_system = rec;
  with_system.request_body =
      R"({"systemInstruction":{"parts":[{"text":"Be kind."}]},"contents":[)"
      R"({"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"text":"Hello"}]}]})";
  const CapturedContent s = capture(with_system, kCap);
  REQUIRE(s.system.size() == 1);
  CHECK(s.system[0].content == "Be kind.");
  REQUIRE(s.input.size() == 2);
  CHECK(s.input[1].role == "assistant");
}

TEST_CASE("content capture stops at the cap, at a UTF-8 boundary, marked truncated") {
  Recording rec = recording("anthropic", "messages_stream_text");
  // "é" is two bytes: a cap of 10 falls inside the fifth one.
  rec.request_body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":")" +
                     std::string(20, 'x') + "\"}]}";
  for (size_t cap : {size_t{1}, size_t{5}, size_t{10}, size_t{12}}) {
    const CapturedContent c = capture(rec, cap);
    size_t in_bytes = 0;
    for (const auto& m : c.input) {
      in_bytes += m.role.size();
      for (const auto& p : m.parts) in_bytes += p.content.size() + p.name.size() + p.id.size();
    }
    CHECK(in_bytes <= cap);
    CHECK(c.input_truncated);
    size_t out_bytes = 0;
    for (const auto& m : c.output) {
      out_bytes += m.role.size();
      for (const auto& p : m.parts) out_bytes += p.content.size();
    }
    CHECK(out_bytes <= cap);
    CHECK(c.output_truncated);
  }
  rec.request_body =
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"ééééééé"}]})";
  const CapturedContent c = capture(rec, 4 + 9);  // "user" + 4.5 characters
  REQUIRE(c.input.size() == 1);
  CHECK(text_of(c.input[0]) == "éééé");
  CHECK(valid_utf8(text_of(c.input[0])));
  CHECK(c.input_truncated);
}

}  // namespace
}  // namespace tokentap

// Content capture in spans: the GenAI content attributes, scrubbed and bounded; only for kept
// spans; off by default.
#include "proxy/tracing/content_attributes.h"

#include <catch2/catch.hpp>
#include <random>

#include "proxy/tracing/tracing_metrics.h"
#include "proxy/tracing/tracing_stage.h"

using namespace tokentap;
using nlohmann::json;

namespace {

class RecordingQueue : public SpanQueue {
 public:
  bool enqueue(json span) override {
    spans.push_back(std::move(span));
    return true;
  }
  std::vector<json> spans;
};

const json* attribute(const json& attrs, std::string_view key) {
  for (const json& a : attrs) {
    if (a["key"] == key) return &a["value"];
  }
  return nullptr;
}

std::string string_attr(const json& attrs, std::string_view key) {
  const json* v = attribute(attrs, key);
  return v == nullptr ? std::string() : (*v)["stringValue"].get<std::string>();
}

CapturedContent sample_content() {
  CapturedContent c;
  c.system.push_back({"text", "", "", "You help alice@example.com."});
  c.input.push_back(
      {"user", {{"text", "", "", "My card is 4111 1111 1111 1111, call +1 415 555 0100."}}, ""});
  c.input.push_back({"assistant", {{"tool_call", "call_1", "lookup", R"({"ip":"10.1.2.3"})"}}, ""});
  c.input.push_back(
      {"tool",
       {{"tool_call_response", "call_1", "", "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"}},
       ""});
  c.output.push_back({"assistant", {{"text", "", "", "Done, bob@example.org."}}, ""});
  return c;
}

TracingSettings capture_settings() {
  TracingSettings s;
  s.enabled = true;
  s.endpoint = "http://127.0.0.1:4318/v1/traces";
  s.capture_content = true;
  return s;
}

RequestContext metered_request() {
  RequestContext ctx;
  ctx.llm.metered = true;
  ctx.llm.operation = "chat_completions";
  ctx.llm.provider = "openai";
  ctx.llm.model = "gpt-4o-mini";
  ctx.llm.finish_reason = "stop";
  ctx.status = 200;
  ctx.start = Clock::now();
  ctx.end = ctx.start + std::chrono::milliseconds(5);
  ctx.wall_end = std::chrono::system_clock::now();
  return ctx;
}

}  // namespace

TEST_CASE("content attributes: GenAI messages, scrubbed, counted") {
  PiiScrubber scrubber;
  PiiCounts counts;
  json attrs = json::array();
  add_content_attributes(sample_content(), "stop", scrubber, 16 << 10, counts, attrs);

  const json system = json::parse(string_attr(attrs, "gen_ai.system_instructions"));
  CHECK(system == json::parse(R"([{"type":"text","content":"You help <EMAIL>."}])"));
  const json input = json::parse(string_attr(attrs, "gen_ai.input.messages"));
  REQUIRE(input.size() == 3);
  CHECK(input[0] == json::parse(R"({"role":"user","parts":[{"type":"text",
        "content":"My card is <CREDIT_CARD>, call <PHONE>."}]})"));
  CHECK(input[1]["parts"][0] == json::parse(R"({"type":"tool_call","id":"call_1","name":"lookup",
        "arguments":"{\"ip\":\"<IP>\"}"})"));
  CHECK(input[2]["parts"][0]["type"] == "tool_call_response");
  CHECK(input[2]["parts"][0]["response"] == "key <API_KEY>");
  const json output = json::parse(string_attr(attrs, "gen_ai.output.messages"));
  CHECK(output == json::parse(R"([{"role":"assistant","parts":[{"type":"text",
        "content":"Done, <EMAIL>."}],"finish_reason":"stop"}])"));
  CHECK(attribute(attrs, "tokentap.content.truncated") == nullptr);

  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::email)] == 2);
  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::credit_card)] == 1);
  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::phone)] == 1);
  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::ip)] == 1);
  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::api_key)] == 1);
  CHECK(attrs.dump().find("alice") == std::string::npos);
  CHECK(attrs.dump().find("abcdefghijklmnop") == std::string::npos);
}

TEST_CASE("content attributes: custom patterns") {
  PiiScrubber scrubber({"EMP-[0-9]{6}"});
  PiiCounts counts;
  CapturedContent c;
  c.input.push_back({"user", {{"text", "", "", "employee EMP-123456 here"}}, ""});
  json attrs = json::array();
  add_content_attributes(c, "", scrubber, 1024, counts, attrs);
  CHECK(json::parse(string_attr(attrs, "gen_ai.input.messages"))[0]["parts"][0]["content"] ==
        "employee <REDACTED> here");
  CHECK(counts.by_kind[static_cast<size_t>(PiiKind::custom)] == 1);
  CHECK(attribute(attrs, "gen_ai.output.messages") == nullptr);
}

TEST_CASE("content attributes: each side bounded, truncation marked, UTF-8 kept whole") {
  PiiScrubber scrubber;
  std::mt19937 rng(7);
  const std::string alphabet[] = {"a", "é", "\"", "\n", "\x01", "€", " ", "😀"};
  for (int round = 0; round < 200; ++round) {
    CapturedContent c;
    const int messages = 1 + static_cast<int>(rng() % 5);
    for (int m = 0; m < messages; ++m) {
      ContentMessage msg{m % 2 ? "assistant" : "user", {}, ""};
      const int parts = 1 + static_cast<int>(rng() % 3);
      for (int p = 0; p < parts; ++p) {
        std::string text;
        const size_t len = rng() % 300;
        for (size_t i = 0; i < len; ++i) text += alphabet[rng() % std::size(alphabet)];
        msg.parts.push_back({p == 2 ? "tool_call" : "text", "", p == 2 ? "f" : "", text});
      }
      c.input.push_back(msg);
      if (m == 0) c.output.push_back(msg);
    }
    const size_t max = 20 + rng() % 1500;
    PiiCounts counts;
    json attrs = json::array();
    add_content_attributes(c, "stop", scrubber, max, counts, attrs);
    bool any_cut = false;
    for (const char* key : {"gen_ai.input.messages", "gen_ai.output.messages"}) {
      const std::string text = string_attr(attrs, key);
      CHECK(text.size() <= max);
      if (text.empty()) {
        any_cut = true;
        continue;
      }
      const json parsed = json::parse(text);  // valid JSON, valid UTF-8 (throws otherwise)
      CHECK(parsed.is_array());
      if (text.find("<TRUNCATED>") != std::string::npos) any_cut = true;
    }
    if (any_cut) CHECK(attribute(attrs, "tokentap.content.truncated") != nullptr);
  }
  // A text that fits is kept whole; one byte less and it is cut with the mark.
  CapturedContent c;
  c.output.push_back({"assistant", {{"text", "", "", std::string(100, 'x')}}, "stop"});
  PiiCounts counts;
  json whole = json::array();
  add_content_attributes(c, "", scrubber, 1000, counts, whole);
  const size_t size = string_attr(whole, "gen_ai.output.messages").size();
  json cut = json::array();
  add_content_attributes(c, "", scrubber, size - 1, counts, cut);
  const std::string text = string_attr(cut, "gen_ai.output.messages");
  CHECK(text.size() <= size - 1);
  CHECK(text.find(std::string(kTruncatedMark)) != std::string::npos);
  CHECK(attribute(cut, "tokentap.content.truncated")->at("boolValue") == true);
}

TEST_CASE("content capture in the tracing stages: off by default, on only for kept spans") {
  auto run = [](const TracingSettings& settings, const char* traceparent, bool fail) {
    TracingHub hub;
    hub.configure(settings);
    auto worker = std::make_shared<WorkerTracing>(hub);
    auto queue = std::make_shared<RecordingQueue>();
    TraceHeaderStage stage(worker, 1);
    TraceCompletionSink sink(worker, queue, 2);
    RequestContext ctx = metered_request();
    HeaderEdits edits;
    HeaderList headers;
    if (traceparent != nullptr) headers.push_back({"traceparent", traceparent});
    stage.on_request_head(ctx, headers, edits);
    const size_t capture = ctx.capture_content_bytes;
    // What the metering observer does when capture is on.
    if (capture > 0) ctx.content = std::make_shared<const CapturedContent>(sample_content());
    if (fail) {
      ctx.status = 502;
      ctx.error = ErrorType::upstream_reset;
    }
    sink.on_request_end(ctx);
    uint64_t redactions = 0;
    for (const auto& n : hub.pii_counts()->by_kind) redactions += n.load();
    return std::make_tuple(capture, queue->spans, redactions);
  };

  TracingSettings off = capture_settings();
  off.capture_content = false;
  auto [bytes, spans, redactions] = run(off, nullptr, false);
  CHECK(bytes == 0);
  REQUIRE(spans.size() == 1);
  CHECK(attribute(spans[0]["attributes"], "gen_ai.input.messages") == nullptr);
  CHECK(attribute(spans[0]["attributes"], "gen_ai.output.messages") == nullptr);
  CHECK(redactions == 0);

  std::tie(bytes, spans, redactions) = run(capture_settings(), nullptr, false);
  CHECK(bytes == 16 << 10);  // the default cap
  REQUIRE(spans.size() == 1);
  CHECK(attribute(spans[0]["attributes"], "gen_ai.input.messages") != nullptr);
  CHECK(redactions == 6);

  // The parent says not sampled: with keep_errors nothing is exported unless it fails, so
  // content is collected but only scrubbed and built for the failure.
  const char* unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  std::tie(bytes, spans, redactions) = run(capture_settings(), unsampled, false);
  CHECK(bytes > 0);
  CHECK(spans.empty());
  CHECK(redactions == 0);
  std::tie(bytes, spans, redactions) = run(capture_settings(), unsampled, true);
  REQUIRE(spans.size() == 1);
  CHECK(attribute(spans[0]["attributes"], "gen_ai.output.messages") != nullptr);
  CHECK(redactions == 6);

  // Without keep_errors a span the head decision drops never collects content.
  TracingSettings no_errors = capture_settings();
  no_errors.keep_errors = false;
  std::tie(bytes, spans, redactions) = run(no_errors, unsampled, true);
  CHECK(bytes == 0);
  CHECK(spans.empty());
  no_errors.sample_ratio = 0;
  std::tie(bytes, spans, redactions) = run(no_errors, nullptr, false);
  CHECK(bytes == 0);
  CHECK(spans.empty());
}

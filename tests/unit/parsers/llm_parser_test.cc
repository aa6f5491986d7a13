// LlmParser behaviour that the golden recordings do not pin down: limits, broken inputs, and
// the call contract.
#include "parsers/llm_parser.h"

#include <catch2/catch.hpp>
#include <string>

#include "tests/unit/parsers/test_codecs.h"

namespace tokentap {
namespace {

std::unique_ptr<LlmParser> start(ApiProvider provider, const std::string& target, int status,
                                 const std::string& content_type, const std::string& request = "",
                                 const ParserLimits& limits = {},
                                 const std::string& content_encoding = "") {
  auto p = LlmParser::create(provider, "POST", target, limits);
  REQUIRE(p != nullptr);
  if (!request.empty()) p->on_request_body(request);
  p->begin_response(status);
  if (!content_type.empty()) p->response_header("Content-Type", content_type);
  if (!content_encoding.empty()) p->response_header("Content-Encoding", content_encoding);
  p->end_response_headers();
  return p;
}

uint32_t errors_of(const LlmFacts& f, ParseErrorKind k) {
  return f.parse_errors[static_cast<size_t>(k)];
}

TEST_CASE("parser: a needed member over the limit is counted, the rest still read", "[parser]") {
  ParserLimits limits;
  limits.max_json_bytes = 256;
  const std::string body =
      R"({"model":"gpt-4o","choices":[{"index":0,"message":{"content":")" + std::string(1000, 'x') +
      R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":400}})";
  auto p = start(ApiProvider::openai, "/v1/chat/completions", 200, "application/json", "", limits);
  p->feed(body);
  p->finish();
  CHECK(errors_of(p->facts(), ParseErrorKind::oversized) == 1);
  CHECK(p->facts().usage.present);
  CHECK(p->facts().usage.output == 400);
  CHECK(p->facts().response_model == "gpt-4o");
  CHECK(p->facts().response_complete);
}

TEST_CASE("parser: members nobody needs may be any size", "[parser]") {
  ParserLimits limits;
  limits.max_json_bytes = 256;
  std::string data = "[";
  for (int i = 0; i < 2000; ++i) data += (i ? "," : "") + std::to_string(i * 0.001);
  data += "]";
  const std::string body =
      R"({"object":"list","data":[{"embedding":)" + data +
      R"(}],"model":"text-embedding-3-large","usage":{"prompt_tokens":8,"total_tokens":8}})";
  auto p = start(ApiProvider::openai, "/v1/embeddings", 200, "application/json", "", limits);
  for (size_t i = 0; i < body.size(); i += 100) p->feed(std::string_view(body).substr(i, 100));
  p->finish();
  CHECK(p->facts().parse_error_count() == 0);
  CHECK(p->facts().usage.input == 8);
}

TEST_CASE("parser: an SSE event over the limit is skipped and counted", "[parser]") {
  ParserLimits limits;
  limits.max_json_bytes = 128;
  auto p = start(ApiProvider::anthropic, "/v1/messages", 200, "text/event-stream", "", limits);
  p->feed(
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"" +
      std::string(500, 'z') + "\"}}\n\n");
  p->feed("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
  p->finish();
  CHECK(errors_of(p->facts(), ParseErrorKind::oversized) == 1);
  CHECK(p->facts().response_complete);
}

TEST_CASE("parser: deeply nested JSON is refused before it is parsed", "[parser]") {
  auto p = start(ApiProvider::openai, "/v1/chat/completions", 200, "text/event-stream");
  p->feed("data: {\"choices\":" + std::string(100'000, '[') + std::string(100'000, ']') +
          "}\n\ndata: [DONE]\n\n");
  p->finish();
  CHECK(errors_of(p->facts(), ParseErrorKind::invalid_json) == 1);
  CHECK(p->facts().response_complete);
}

TEST_CASE("parser: corrupt compressed bytes stop parsing and are counted once", "[parser]") {
  std::string body = test::gzip_encode(R"({"model":"m","usage":{"prompt_tokens":1}})");
  body[body.size() / 2] ^= 0x7f;
  body[body.size() / 2 + 1] ^= 0x7f;
  auto p =
      start(ApiProvider::openai, "/v1/chat/completions", 200, "application/json", "", {}, "gzip");
  p->feed(body);
  p->feed(body);
  p->finish();
  CHECK(errors_of(p->facts(), ParseErrorKind::decode_error) == 1);
  CHECK(p->facts().parse_error_count() == 1);
}

TEST_CASE("parser: an encoding we cannot decode is counted, not guessed", "[parser]") {
  auto p =
      start(ApiProvider::openai, "/v1/chat/completions", 200, "application/json", "", {}, "zstd");
  p->feed("\x28\xb5\x2f\xfd garbage");
  p->finish();
  CHECK(errors_of(p->facts(), ParseErrorKind::unsupported_encoding) == 1);
  CHECK(p->facts().parse_error_count() == 1);
}

TEST_CASE("parser: a non-JSON error page is an upstream error, not a parse error", "[parser]") {
  auto p = start(ApiProvider::openai, "/v1/chat/completions", 502, "text/html");
  p->feed("<html><body>502 Bad Gateway</body></html>");
  p->finish();
  CHECK(p->facts().parse_error_count() == 0);
  CHECK(p->facts().error.http_status == 502);
  CHECK(p->facts().error_class == ErrorClass::upstream_error);
}

TEST_CASE("parser: a stream without a content type is still read as SSE", "[parser]") {
  auto p =
      start(ApiProvider::openai, "/v1/chat/completions", 200, "", R"({"model":"m","stream":true})");
  p->feed("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n");
  p->finish();
  CHECK(p->facts().content_events == 1);
  CHECK(p->facts().response_complete);
  CHECK(p->facts().parse_error_count() == 0);
}

TEST_CASE("parser: feed results mark the first and later content", "[parser]") {
  auto p = start(ApiProvider::openai, "/v1/chat/completions", 200, "text/event-stream");
  const std::string role =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n";
  const std::string text = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
  FeedResult r = p->feed(role);
  CHECK_FALSE(r.content);
  CHECK_FALSE(r.first_content);
  r = p->feed(text.substr(0, 20));
  CHECK_FALSE(r.content);
  r = p->feed(text.substr(20));
  CHECK(r.content);
  CHECK(r.first_content);
  r = p->feed(text + text);
  CHECK(r.content);
  CHECK_FALSE(r.first_content);
  CHECK(p->facts().content_events == 3);
}

TEST_CASE("parser: the call contract is forgiving", "[parser]") {
  SECTION("finish is idempotent and later feeds are ignored") {
    auto p = start(ApiProvider::anthropic, "/v1/messages", 200, "text/event-stream");
    p->feed("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    p->finish();
    p->feed("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\"}}\n\n");
    p->finish();
    CHECK_FALSE(p->facts().error.present());
    CHECK(p->facts().error_class == ErrorClass::none);
  }
  SECTION("finish without any response still classifies") {
    auto p = LlmParser::create(std::nullopt, "POST", "/v1/messages");
    p->finish();
    CHECK(p->facts().http_status == 0);
    CHECK(p->facts().error_class == ErrorClass::none);
    CHECK(p->facts().provider == ApiProvider::anthropic);
  }
  SECTION("only the first request body is read; an encoded one is not") {
    auto p = LlmParser::create(ApiProvider::openai, "POST", "/v1/chat/completions");
    p->on_request_body(R"({"model":"first"})");
    p->on_request_body(R"({"model":"second"})");
    CHECK(p->facts().requested_model == "first");
    auto q = LlmParser::create(ApiProvider::openai, "POST", "/v1/chat/completions");
    q->request_header("Content-Encoding", "gzip");
    q->on_request_body("\x1f\x8b garbage");
    CHECK(q->facts().parse_error_count() == 0);
  }
  SECTION("a request body that is not a JSON object is counted") {
    auto p = LlmParser::create(ApiProvider::anthropic, "POST", "/v1/messages");
    p->on_request_body(R"({"model":"claude","messages":[{"role":"user","content":[}]})");
    CHECK(errors_of(p->facts(), ParseErrorKind::invalid_request) == 1);
  }
  SECTION("Azure's deployment wins over a model in the body") {
    auto p = LlmParser::create(std::nullopt, "POST",
                               "/openai/deployments/prod-4o/chat/completions?api-version=1");
    p->on_request_body(R"({"model":"gpt-4o","messages":[]})");
    CHECK(p->facts().requested_model == "prod-4o");
    CHECK(p->facts().provider == ApiProvider::azure_openai);
  }
}

TEST_CASE("parser: Anthropic tool results resolve names within the request", "[parser]") {
  auto p = LlmParser::create(ApiProvider::anthropic, "POST", "/v1/messages");
  p->on_request_body(R"({"model":"claude-sonnet-4-20250514","messages":[
    {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"bash","input":{}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"exit 1"},
      {"type":"tool_result","tool_use_id":"t1","content":"ok"},
      {"type":"tool_result","tool_use_id":"gone","is_error":true}]},
    {"role":"assistant","content":"Done."}]})");
  const auto& results = p->facts().tool_results;
  REQUIRE(results.size() == 3);
  CHECK(results[0].tool == "bash");
  CHECK(results[0].is_error);
  CHECK(results[1].tool == "bash");
  CHECK_FALSE(results[1].is_error);
  CHECK(results[2].tool == "unknown");
  CHECK(p->facts().parse_error_count() == 0);
}

// The Responses API says `completed` for answers and tool turns alike; the finish reason tells
// them apart. A stream's outcome is its terminal event's status only.
TEST_CASE("parser: Responses API finish reasons", "[parser]") {
  auto finish_of = [](const std::string& sse) {
    auto p = start(ApiProvider::openai, "/v1/responses", 200, "text/event-stream");
    p->feed(sse);
    p->finish();
    return p->facts().finish_reason;
  };
  auto event = [](const std::string& type, const std::string& fields) {
    return "event: " + type + "\ndata: {\"type\":\"" + type + "\"," + fields + "}\n\n";
  };
  const std::string queued = event("response.queued", R"("response":{"status":"queued"})");
  const std::string text_item =
      event("response.output_item.added", R"("item":{"type":"message","role":"assistant"})");
  const std::string search_item =
      event("response.output_item.added", R"("item":{"type":"web_search_call"})");
  const std::string computer_item =
      event("response.output_item.added", R"("item":{"type":"computer_call"})");
  const std::string hosted_shell_item =
      event("response.output_item.added",
            R"("item":{"type":"shell_call","environment":{"type":"container_reference"}})");
  const std::string completed = event("response.completed", R"("response":{"status":"completed"})");

  CHECK(finish_of(queued + text_item + completed) == "stop");
  CHECK(finish_of(search_item + hosted_shell_item + text_item + completed) == "stop");
  CHECK(finish_of(search_item + computer_item + completed) == "tool_calls");
  CHECK(finish_of(event("response.incomplete",
                        R"("response":{"status":"incomplete","incomplete_details":)"
                        R"({"reason":"content_filter"}})")) == "content_filter");
  CHECK(finish_of(event("response.failed", R"("response":{"status":"failed"})")) == "failed");
  // Cut after the background response was queued: no outcome yet.
  CHECK(finish_of(queued + text_item).empty());

  auto p = start(ApiProvider::openai, "/v1/responses", 200, "application/json");
  p->feed(R"({"status":"in_progress","background":true,"output":[],"usage":null})");
  p->finish();
  CHECK(p->facts().finish_reason == "in_progress");
  CHECK(p->facts().usage_not_reported_by_api);
}

TEST_CASE("parser: tool names are capped", "[parser]") {
  auto p = start(ApiProvider::anthropic, "/v1/messages", 200, "application/json");
  std::string content;
  for (int i = 0; i < 100; ++i) {
    content += (i ? "," : "") + std::string(R"({"type":"tool_use","id":"t","name":"tool_)") +
               std::to_string(i) + R"(","input":{}})";
  }
  for (int i = 0; i < 5; ++i) {
    content += R"(,{"type":"server_tool_use","id":"s","name":"search_)" + std::to_string(i) +
               R"(","input":{}})";
  }
  p->feed(R"({"type":"message","content":[)" + content + "]}");
  p->finish();
  // One "other" per kind collects the names past the cap.
  const auto& calls = p->facts().tool_calls;
  REQUIRE(calls.size() == 64);
  CHECK(calls[61].name == "tool_61");
  CHECK(calls[62].name == "other");
  CHECK(calls[62].kind == ToolKind::function);
  CHECK(calls[62].count == 100 - 62);
  CHECK(calls[63].name == "other");
  CHECK(calls[63].kind == ToolKind::server);
  CHECK(calls[63].count == 5);
}

}  // namespace
}  // namespace tokentap

namespace tokentap {
namespace {

uint64_t args_hash(std::string_view text) {
  return hash_tool_arguments(kToolArgumentsHashSeed, text);
}

TEST_CASE("parser: OpenAI stream tool call refs hash the arguments across deltas", "[parser]") {
  auto p = start(ApiProvider::openai, "/v1/chat/completions", 200, "text/event-stream",
                 R"({"model":"gpt-4o","stream":true,"messages":[{"role":"tool","tool_call_id":"c0",
                     "content":"{\"error\":\"boom\"}"}]})");
  p->feed(
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\","
      "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
      "\"function\":{\"arguments\":\"ty\\\":1}\"}}]}}]}\n\ndata: [DONE]\n\n");
  p->finish();
  const auto& refs = p->facts().tool_call_refs;
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].call_id == "c1");
  CHECK(refs[0].name == "get_weather");
  CHECK(refs[0].arguments_hash == args_hash(R"({"city":1})"));
  const auto& results = p->facts().tool_result_refs;
  REQUIRE(results.size() == 1);
  CHECK(results[0].call_id == "c0");
  CHECK(results[0].is_error);
}

TEST_CASE("parser: Anthropic and Gemini tool call refs, client calls only", "[parser]") {
  auto a = start(ApiProvider::anthropic, "/v1/messages", 200, "text/event-stream");
  a->feed(
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
      "\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"bash\",\"input\":{}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
      "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"2}\"}}\n\n"
      "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
      "\"content_block\":{\"type\":\"server_tool_use\",\"id\":\"s1\",\"name\":\"web_search\"}}"
      "\n\n");
  a->finish();
  REQUIRE(a->facts().tool_call_refs.size() == 1);
  CHECK(a->facts().tool_call_refs[0].call_id == "tu1");
  CHECK(a->facts().tool_call_refs[0].arguments_hash == args_hash(R"({"a":2})"));

  auto g = start(ApiProvider::gemini, "/v1beta/models/gemini-2.5-flash:generateContent", 200,
                 "application/json");
  g->feed(R"({"candidates":[{"content":{"role":"model","parts":[
      {"functionCall":{"name":"lookup","args":{"q":"x"}}}]},"finishReason":"STOP"}]})");
  g->finish();
  REQUIRE(g->facts().tool_call_refs.size() == 1);
  CHECK(g->facts().tool_call_refs[0].name == "lookup");
  CHECK(g->facts().tool_call_refs[0].arguments_hash == args_hash(R"({"q":"x"})"));
}

}  // namespace
}  // namespace tokentap

#include "parsers/tool_results.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <string>

using namespace tokentap;

namespace {

std::string golden(const std::string& name) {
  std::ifstream in(std::string(TOKENTAP_GOLDEN_DIR) + "/" + name, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string describe(const std::vector<ToolResultRef>& refs) {
  std::string out;
  for (const ToolResultRef& r : refs) {
    out += r.call_id + "/" + r.name + (r.is_error ? "=error" : "=success") + " ";
  }
  return out;
}

}  // namespace

TEST_CASE("Anthropic: tool_result blocks of the last user message, with is_error",
          "[tool_results]") {
  // The golden request holds an earlier turn's result too (toolu_00Hq); only the newest count.
  std::string body = golden("anthropic/messages_nonstream_tool_use.request.json");
  REQUIRE_FALSE(body.empty());
  CHECK(describe(newest_tool_results(ApiProvider::anthropic, Operation::messages, body)) ==
        "toolu_01A09q90qw90lq917835lq9/=success toolu_01B7cK3Lm9/=error "
        "toolu_01C2xR8Tq4/=success ");
  CHECK(newest_tool_results(ApiProvider::anthropic, Operation::messages,
                            R"({"messages":[{"role":"user","content":[{"type":"tool_result",
                            "tool_use_id":"t1"}]},{"role":"assistant","content":"ok"}]})")
            .empty());
  CHECK(newest_tool_results(ApiProvider::anthropic, Operation::messages,
                            R"({"messages":[{"role":"user","content":"hi"}]})")
            .empty());
}

TEST_CASE("OpenAI chat: the trailing tool messages; JSON content with error is an error",
          "[tool_results]") {
  const char* body = R"({"model":"gpt-4o","messages":[
    {"role":"user","content":"weather?"},
    {"role":"assistant","tool_calls":[{"id":"call_old","type":"function",
      "function":{"name":"f","arguments":"{}"}}]},
    {"role":"tool","tool_call_id":"call_old","content":"done"},
    {"role":"assistant","tool_calls":[]},
    {"role":"tool","tool_call_id":"call_a","content":"{\"temp\":15}"},
    {"role":"tool","tool_call_id":"call_b","content":" {\"error\":\"not found\"}"},
    {"role":"tool","tool_call_id":"call_c","content":[{"type":"text","text":"{\"error\":1}"}]}]})";
  CHECK(describe(newest_tool_results(ApiProvider::openai, Operation::chat_completions, body)) ==
        "call_a/=success call_b/=error call_c/=success ");
  CHECK(describe(newest_tool_results(ApiProvider::azure_openai, Operation::chat_completions,
                                     body)) == "call_a/=success call_b/=error call_c/=success ");
  CHECK(newest_tool_results(ApiProvider::openai, Operation::chat_completions,
                            R"({"messages":[{"role":"tool","tool_call_id":"x","content":"a"},
                            {"role":"user","content":"next"}]})")
            .empty());
  CHECK(newest_tool_results(ApiProvider::openai, Operation::embeddings, body).empty());
}

TEST_CASE("OpenAI Responses: the trailing function_call_output items", "[tool_results]") {
  const char* body = R"({"model":"gpt-4o","previous_response_id":"resp_1","input":[
    {"type":"function_call_output","call_id":"call_1","output":"{\"error\":{\"code\":1}}"},
    {"type":"custom_tool_call_output","call_id":"call_2","output":"ok"}]})";
  CHECK(describe(newest_tool_results(ApiProvider::openai, Operation::responses, body)) ==
        "call_1/=error call_2/=success ");
  CHECK(newest_tool_results(ApiProvider::openai, Operation::responses, R"({"input":"just text"})")
            .empty());
  const char* with_history = R"({"input":[
    {"type":"function_call_output","call_id":"old","output":"x"},
    {"role":"user","content":"again"},
    {"type":"function_call","call_id":"new","name":"f","arguments":"{}"},
    {"type":"function_call_output","call_id":"new","output":"y"}]})";
  CHECK(describe(newest_tool_results(ApiProvider::openai, Operation::responses, with_history)) ==
        "new/=success ");
}

TEST_CASE("Gemini: functionResponse parts of the last content, by id else name", "[tool_results]") {
  const char* body = R"({"contents":[
    {"role":"user","parts":[{"text":"weather?"}]},
    {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{}}}]},
    {"role":"user","parts":[
      {"functionResponse":{"name":"get_weather","response":{"temp":15}}},
      {"functionResponse":{"id":"fc_2","name":"read_file","response":{"error":"ENOENT"}}}]}]})";
  CHECK(describe(newest_tool_results(ApiProvider::gemini, Operation::generate_content, body)) ==
        "/get_weather=success fc_2/read_file=error ");
  CHECK(newest_tool_results(ApiProvider::gemini, Operation::generate_content,
                            R"({"contents":[{"role":"model","parts":[{"functionResponse":
                            {"name":"f","response":{}}}]}]})")
            .empty());
}

TEST_CASE("tool results: malformed bodies and long ids stay bounded and never throw",
          "[tool_results]") {
  CHECK(newest_tool_results(ApiProvider::openai, Operation::chat_completions, "not json").empty());
  CHECK(newest_tool_results(ApiProvider::anthropic, Operation::messages, "[1,2]").empty());
  CHECK(newest_tool_results(ApiProvider::anthropic, Operation::messages,
                            R"({"messages":[{"role":"user","content":[{"type":"tool_result",
                            "tool_use_id":7,"is_error":"yes"}]}]})")
            .size() == 1);
  std::string many = R"({"messages":[)";
  for (int i = 0; i < 100; ++i) {
    many += std::string(i ? "," : "") + R"({"role":"tool","tool_call_id":")" +
            std::string(300, 'x') + R"(","content":"ok"})";
  }
  many += "]}";
  std::vector<ToolResultRef> refs =
      newest_tool_results(ApiProvider::openai, Operation::chat_completions, many);
  CHECK(refs.size() == kMaxToolResultRefs);
  CHECK(refs.front().call_id.size() == kMaxToolRefBytes);
}

TEST_CASE("tool results: the markers that make a body worth parsing for them", "[tool_results]") {
  CHECK(marks_tool_result(ApiProvider::openai, "tool_call_id", /*is_key=*/true));
  CHECK_FALSE(marks_tool_result(ApiProvider::openai, "tool_call_id", /*is_key=*/false));
  CHECK(marks_tool_result(ApiProvider::azure_openai, "function_call_output", false));
  CHECK(marks_tool_result(ApiProvider::openai_compatible, "custom_tool_call_output", false));
  CHECK_FALSE(marks_tool_result(ApiProvider::openai, "function_call_output", true));
  CHECK_FALSE(marks_tool_result(ApiProvider::openai, "function_call", false));
  CHECK(marks_tool_result(ApiProvider::gemini, "functionResponse", true));
  CHECK_FALSE(marks_tool_result(ApiProvider::gemini, "functionResponse", false));
  CHECK_FALSE(marks_tool_result(ApiProvider::gemini, "tool_call_id", true));
  CHECK_FALSE(marks_tool_result(ApiProvider::anthropic, "tool_use_id", true));
}

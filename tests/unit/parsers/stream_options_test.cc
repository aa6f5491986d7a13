#include "parsers/stream_options.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parsers/llm_parser.h"

namespace tokentap {
namespace {

using nlohmann::json;

TEST_CASE("stream_options: added to a streaming request that lacks it", "[stream_options]") {
  SECTION("compact body") {
    const std::string body =
        R"({"model":"gpt-4o","messages":[{"role":"user","content":"}"}],"stream":true})";
    const auto out = add_stream_usage_option(body);
    REQUIRE(out.has_value());
    CHECK(
        *out ==
        R"({"model":"gpt-4o","messages":[{"role":"user","content":"}"}],"stream":true,"stream_options":{"include_usage":true}})");
  }
  SECTION("pretty-printed body: inserted right after the last value, the rest untouched") {
    const std::string body = "{\n  \"stream\": true,\n  \"model\": \"gpt-4o\"\n}\n";
    const auto out = add_stream_usage_option(body);
    REQUIRE(out.has_value());
    CHECK(*out ==
          "{\n  \"stream\": true,\n  \"model\": "
          "\"gpt-4o\",\"stream_options\":{\"include_usage\":true}\n}\n");
    json expected = json::parse(body);
    expected["stream_options"] = {{"include_usage", true}};
    CHECK(json::parse(*out) == expected);
  }
  SECTION("the last of duplicate stream keys decides, as JSON parsers do") {
    CHECK_FALSE(add_stream_usage_option(R"({"stream":true,"stream":false})").has_value());
    CHECK(add_stream_usage_option(R"({"stream":false,"stream":true})").has_value());
  }
}

TEST_CASE("stream_options: every other body is left alone", "[stream_options]") {
  for (const char* body :
       {R"({"model":"gpt-4o","stream":false})", R"({"model":"gpt-4o"})",
        R"({"stream":true,"stream_options":{"include_usage":false}})",
        R"({"stream":true,"stream_options":null})", R"({"stream":"true"})", R"({"stream":true)",
        R"([{"stream":true}])", "", "not json", R"({"stream":true} trailing)"}) {
    INFO(body);
    CHECK_FALSE(add_stream_usage_option(body).has_value());
  }
}

constexpr std::string_view kChunk =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null})";
constexpr std::string_view kFinish =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null})";
// The same chunks as the client sees them: without the "usage":null include_usage adds.
constexpr std::string_view kChunkSeen =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})";
constexpr std::string_view kFinishSeen =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})";
constexpr std::string_view kUsage =
    R"({"id":"c1","object":"chat.completion.chunk","choices":[ ],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}})";
constexpr std::string_view kAzurePromptFilter =
    R"({"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]})";

std::string event(std::string_view data, std::string_view eol) {
  return "data: " + std::string(data) + std::string(eol) + std::string(eol);
}

std::string filter(const std::vector<std::string>& chunks, uint32_t* removed = nullptr) {
  UsageChunkFilter f;
  std::string out;
  std::string piece;
  for (const std::string& c : chunks) {
    piece.clear();
    f.feed(c, piece);
    out += piece;
  }
  piece.clear();
  f.finish(piece);
  out += piece;
  if (removed != nullptr) *removed = f.removed_events();
  return out;
}

// Filters `in` whole, split at every offset and byte by byte; all must agree.
std::string filter_every_way(const std::string& in, uint32_t* removed = nullptr) {
  const std::string whole = filter({in}, removed);
  for (size_t k = 0; k <= in.size(); ++k) {
    INFO("split at " << k);
    REQUIRE(filter({in.substr(0, k), in.substr(k)}) == whole);
  }
  std::vector<std::string> bytes;
  for (char c : in) bytes.emplace_back(1, c);
  REQUIRE(filter(bytes) == whole);
  return whole;
}

TEST_CASE("usage chunk filter removes exactly the usage-only chunk", "[stream_options]") {
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    INFO("line end " << (eol == "\n" ? "LF" : eol == "\r" ? "CR" : "CRLF"));
    const std::string before = event(kAzurePromptFilter, eol) + ": comment" + std::string(eol) +
                               event(kChunk, eol) + event(kFinish, eol);
    const std::string seen = event(kAzurePromptFilter, eol) + ": comment" + std::string(eol) +
                             event(kChunkSeen, eol) + event(kFinishSeen, eol);
    const std::string after = event("[DONE]", eol);
    uint32_t removed = 0;
    CHECK(filter_every_way(before + event(kUsage, eol) + after, &removed) == seen + after);
    CHECK(removed == 1);
    CHECK(filter_every_way(before + after, &removed) == seen + after);
    CHECK(removed == 0);
  }
}

TEST_CASE("usage chunk filter removes the usage:null member include_usage adds",
          "[stream_options]") {
  const std::string with_null =
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null})";
  const std::string without =
      R"({"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})";
  const std::string spaced =
      R"({"id": "c1", "choices": [{"index": 0, "delta": {"content": "usage: null"}}], "usage": null})";
  const std::string spaced_without =
      R"({"id": "c1", "choices": [{"index": 0, "delta": {"content": "usage: null"}}]})";
  for (std::string_view eol : {"\n", "\r\n", "\r"}) {
    CHECK(filter_every_way(event(with_null, eol) + event(kUsage, eol) + event("[DONE]", eol)) ==
          event(without, eol) + event("[DONE]", eol));
    CHECK(filter_every_way(event(spaced, eol)) == event(spaced_without, eol));
  }
  // Only a top-level null usage is removed; a nested one, a first member, or a real value stays.
  const std::string nested = R"({"choices":[{"delta":{"usage":null}}]})";
  CHECK(filter_every_way(event(nested, "\n")) == event(nested, "\n"));
  const std::string first = R"({"usage":null,"choices":[{"delta":{}}]})";
  CHECK(filter_every_way(event(first, "\n")) == event(first, "\n"));
  const std::string multi = "data: {\"a\":1,\ndata: \"usage\":null}\n\n";
  CHECK(filter_every_way(multi) == multi);
}

TEST_CASE("usage chunk filter passes large and unterminated events through", "[stream_options]") {
  const std::string big = "data: {\"choices\":[],\"usage\":{\"pad\":\"" +
                          std::string(UsageChunkFilter::kMaxHeldBytes, 'x') + "\"}}\n\n";
  CHECK(filter({big}) == big);
  std::string out;
  UsageChunkFilter f;
  f.feed(big.substr(0, big.size() - 10), out);
  CHECK(out.size() > UsageChunkFilter::kMaxHeldBytes);  // not held back while it grows
  const std::string partial = "data: {\"choices\":[";
  CHECK(filter({event(kChunk, "\n") + partial}) == event(kChunkSeen, "\n") + partial);
}

TEST_CASE("metering still gets usage from the unfiltered copy", "[stream_options]") {
  const std::string request = R"({"model":"gpt-4o","messages":[],"stream":true})";
  const std::string upstream =
      event(kChunk, "\n") + event(kFinish, "\n") + event(kUsage, "\n") + event("[DONE]", "\n");
  auto parser = LlmParser::create(ApiProvider::openai, "POST", "/v1/chat/completions");
  parser->on_request_body(request);
  parser->begin_response(200);
  parser->response_header("content-type", "text/event-stream");
  parser->end_response_headers();
  parser->feed(upstream);
  parser->finish();
  CHECK(parser->facts().usage.present);
  CHECK(parser->facts().usage.input == 5);
  CHECK_FALSE(parser->facts().stream_options_present);
  CHECK(filter({upstream}) ==
        event(kChunkSeen, "\n") + event(kFinishSeen, "\n") + event("[DONE]", "\n"));
}

}  // namespace
}  // namespace tokentap

namespace tokentap {
TEST_CASE("stream_options: escaped keys are read as the provider reads them", "[stream_options]") {
  // "stream\u005foptions" is stream_options: adding another would send the key twice.
  CHECK_FALSE(
      add_stream_usage_option(R"({"stream":true,"stream\u005foptions":{"include_usage":false}})")
          .has_value());
  // Escapes are decoded as the provider decodes them: "str\u0065am" is stream.
  CHECK(add_stream_usage_option(R"({"str\u0065am":true,"model":"m"})") ==
        R"({"str\u0065am":true,"model":"m","stream_options":{"include_usage":true}})");
  CHECK(add_stream_usage_option(R"({"stream":true,"m\u0000x":1})").has_value());
  // Escapes that do not decode: leave the body alone.
  CHECK_FALSE(add_stream_usage_option(R"({"stream":true,"bad\uZZZZ":1})").has_value());
}
}  // namespace tokentap

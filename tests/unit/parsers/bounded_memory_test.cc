// 100 MB bodies generated on the fly: the parser's memory must not grow with the input.
#include <catch2/catch.hpp>
#include <string>

#include "parsers/llm_parser.h"
#include "tests/unit/parsers/alloc_tracker.h"
#include "tests/unit/parsers/test_codecs.h"

namespace tokentap {
namespace {

constexpr size_t kTotalBytes = 100u << 20;
// Far below the input size; above what a few buffers of ParserLimits' defaults may hold.
constexpr size_t kMaxGrowth = 12u << 20;

std::unique_ptr<LlmParser> start(ApiProvider provider, const char* target, const char* content_type,
                                 const char* encoding = nullptr) {
  auto p = LlmParser::create(provider, "POST", target);
  p->begin_response(200);
  p->response_header("content-type", content_type);
  if (encoding != nullptr) p->response_header("content-encoding", encoding);
  p->end_response_headers();
  return p;
}

TEST_CASE("bounded memory: a 100 MB gzip-compressed chat stream", "[memory]") {
  const size_t baseline = test::live_heap_bytes();
  test::reset_peak_heap_bytes();
  auto parser = start(ApiProvider::openai, "/v1/chat/completions", "text/event-stream", "gzip");
  test::GzipStream gzip;
  std::string compressed;
  const std::string event =
      "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":"
      "[{\"index\":0,\"delta\":{\"content\":\"" +
      std::string(8000, 'a') + "\"},\"finish_reason\":null}]}\n\n";
  uint32_t events = 0;
  size_t produced = 0;
  std::string batch;
  while (produced < kTotalBytes) {
    batch.clear();
    for (int i = 0; i < 8; ++i) batch += event;
    events += 8;
    produced += batch.size();
    gzip.write(batch, compressed);
    parser->feed(compressed);
  }
  gzip.write("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":" +
                 std::to_string(events) + "}}\n\ndata: [DONE]\n\n",
             compressed);
  parser->feed(compressed);
  gzip.close(compressed);
  parser->feed(compressed);
  parser->finish();

  const LlmFacts& f = parser->facts();
  CHECK(f.parse_error_count() == 0);
  CHECK(f.content_events == events);
  CHECK(f.usage.present);
  CHECK(f.usage.output == events);
  CHECK(f.response_complete);
  CHECK(test::peak_heap_bytes() - baseline < kMaxGrowth);
}

TEST_CASE("bounded memory: a 100 MB embeddings body with usage at the end", "[memory]") {
  const size_t baseline = test::live_heap_bytes();
  test::reset_peak_heap_bytes();
  auto parser = start(ApiProvider::openai, "/v1/embeddings", "application/json");
  parser->feed(R"({"object":"list","data":[)");
  std::string vector = "[";
  for (int i = 0; i < 3072; ++i) vector += (i ? "," : "") + std::string("-0.012345678");
  vector += "]";
  size_t produced = 0;
  std::string piece;
  for (int index = 0; produced < kTotalBytes; ++index) {
    piece = (index ? "," : "") + std::string(R"({"object":"embedding","index":)") +
            std::to_string(index) + R"(,"embedding":)" + vector + "}";
    produced += piece.size();
    parser->feed(piece);
  }
  parser->feed(
      R"(],"model":"text-embedding-3-large","usage":{"prompt_tokens":81920,"total_tokens":81920}})");
  parser->finish();

  const LlmFacts& f = parser->facts();
  CHECK(f.parse_error_count() == 0);
  CHECK(f.usage.present);
  CHECK(f.usage.input == 81920);
  CHECK(f.response_model == "text-embedding-3-large");
  CHECK(f.response_complete);
  CHECK(test::peak_heap_bytes() - baseline < kMaxGrowth);
}

TEST_CASE("bounded memory: one 100 MB SSE event is dropped, the stream goes on", "[memory]") {
  const size_t baseline = test::live_heap_bytes();
  test::reset_peak_heap_bytes();
  auto parser = start(ApiProvider::anthropic, "/v1/messages", "text/event-stream");
  parser->feed(
      "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\","
      "\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":"
      "{\"type\":\"text_delta\",\"text\":\"");
  const std::string filler(1u << 20, 'x');
  for (size_t produced = 0; produced < kTotalBytes; produced += filler.size()) {
    parser->feed(filler);
  }
  parser->feed(
      "\"}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
      "\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\nevent: message_stop\ndata: "
      "{\"type\":\"message_stop\"}\n\n");
  parser->finish();

  const LlmFacts& f = parser->facts();
  CHECK(f.parse_errors[static_cast<size_t>(ParseErrorKind::oversized)] == 1);
  CHECK(f.parse_error_count() == 1);
  CHECK(f.usage.present);
  CHECK(f.usage.output == 9);
  CHECK(f.finish_reason == "end_turn");
  CHECK(f.response_complete);
  CHECK(test::peak_heap_bytes() - baseline < kMaxGrowth);
}

}  // namespace
}  // namespace tokentap

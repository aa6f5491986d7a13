// The metering observer's summary of a request (RequestContext::llm) for golden recordings
// replayed through a real worker: the client sends the recorded request, the fake upstream
// answers with the recorded response, and the summary must bill the tokens expect.json lists,
// at the hand-computed price of the built-in table.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/http/http1.h"
#include "tests/support/proxy_harness.h"
#include "tests/unit/parsers/golden_support.h"

namespace tokentap {
namespace {

using fuzz::ProxyHarness;
using fuzz::ProxyResult;
using test::Recording;

const Recording& recording(const std::string& name) {
  static const std::vector<Recording> all = [] {
    std::vector<Recording> out;
    for (const char* dir : {"openai", "anthropic", "gemini"}) {
      for (Recording& r : test::load_recordings(dir)) out.push_back(std::move(r));
    }
    return out;
  }();
  for (const Recording& r : all) {
    if (r.name == name) return r;
  }
  FAIL("no recording " << name);
  throw;
}

// The recorded exchange through the harness; the one request's context after on_complete.
RequestContext replay(const Recording& rec) {
  std::string request = (rec.method.empty() ? std::string("POST") : rec.method) + " " + rec.target +
                        " HTTP/1.1\r\nhost: tokentap\r\nx-agent-id: golden\r\n";
  for (const test::TestHeader& h : rec.request_headers) request += h.name + ": " + h.value + "\r\n";
  if (!rec.request_body.empty()) {
    // As the SDKs send it: without it the proxy does not read the body as JSON.
    request += "content-type: application/json\r\ncontent-length: " +
               std::to_string(rec.request_body.size()) + "\r\n";
  }
  request += "\r\n" + rec.request_body;

  std::string response = "HTTP/1.1 " + std::to_string(rec.status) + " " +
                         std::string(status_reason(rec.status)) + "\r\n";
  for (const test::TestHeader& h : rec.response_headers) {
    response += h.name + ": " + h.value + "\r\n";
  }
  response += "content-length: " + std::to_string(rec.response_body.size()) + "\r\n\r\n";
  response += rec.response_body;

  ProxyHarness& h = ProxyHarness::get();
  h.start_client(std::nullopt);
  h.client_send(request);
  REQUIRE(h.upstream_requests_seen() == 1);
  h.upstream_send(response);
  h.client_half_close();
  const ProxyResult r = h.finish();
  REQUIRE(r.completed.size() == 1);
  REQUIRE(r.access_log.size() == 1);
  return r.completed[0];
}

struct Expected {
  const char* recording;
  const char* usage_source;
  const char* usage_missing_reason;
  int64_t nano_usd;  // by hand from pricing/prices.json; 0: not priced
  const char* priced_as;
};

// Cost = sum over token classes of tokens x USD per million tokens, in nano-USD.
constexpr Expected kCases[] = {
    // gpt-4o: (1482 - 1280) x 2.5 + 1280 x 1.25 (cache read) + 46 x 10 = 2565 micro-USD.
    {"openai/chat_nonstream_tool_calls", "reported", "", 2'565'000, "gpt-4o"},
    // claude-3-5-haiku: (1825 - 1800) x 0.8 + 1800 x 0.08 + 15 x 4 = 224 micro-USD.
    {"anthropic/messages_stream_text", "reported", "", 224'000, "claude-3-5-haiku"},
    // gemini-2.5-flash: (1250 - 1024) x 0.3 + 1024 x 0.03 + 162 x 2.5 = 503.52 micro-USD.
    {"gemini/generate_content_function_call", "reported", "", 503'520, "gemini-2.5-flash"},
    // Cut before message_delta: only the input side message_start reported is billed,
    // 120 x 3 (claude-3-7-sonnet) = 360 micro-USD.
    {"anthropic/messages_stream_truncated", "missing", "parse_error", 360'000, "claude-3-7-sonnet"},
    // A 429: no usage, nothing billed, the provider's error class kept.
    {"openai/error_429_rate_limit", "none", "", 0, ""},
};

TEST_CASE("golden recordings through a worker: ctx.llm bills what expect.json says", "[metering]") {
  const Expected& e = GENERATE(from_range(std::begin(kCases), std::end(kCases)));
  const Recording& rec = recording(e.recording);
  INFO(rec.name);
  const nlohmann::json& facts = rec.expected_facts;
  const RequestContext ctx = replay(rec);
  const LlmSummary& s = ctx.llm;

  CHECK(s.metered);
  CHECK(s.provider == facts.at("provider").get<std::string>());
  CHECK(s.operation == facts.at("operation").get<std::string>());
  CHECK(s.model == facts.value("requested_model", facts.value("response_model", "unknown")));
  CHECK(s.response_model == facts.value("response_model", ""));
  CHECK(s.stream == facts.value("stream", false));
  CHECK(ctx.status == rec.status);

  const nlohmann::json usage = facts.value("usage", nlohmann::json::object());
  const bool present = usage.value("present", false);
  CHECK(s.billed.present == present);
  CHECK(s.billed.input == usage.value("input", 0u));
  CHECK(s.billed.cache_read == usage.value("cache_read", 0u));
  CHECK(s.billed.cache_write == usage.value("cache_write", 0u));
  // Without final usage, output counts seen so far are placeholders, never billed.
  CHECK(s.billed.output == (present ? usage.value("output", 0u) : 0u));
  CHECK(s.billed.reasoning == (present ? usage.value("reasoning", 0u) : 0u));
  CHECK(s.usage_source == e.usage_source);
  CHECK(s.usage_missing_reason == e.usage_missing_reason);

  CHECK(s.priced == (e.nano_usd != 0));
  CHECK_FALSE(s.unpriced);
  CHECK(s.nano_usd == e.nano_usd);
  CHECK(s.priced_as == e.priced_as);
  CHECK(error_class_name(s.provider_error_class) == facts.value("error_class", "none"));
}

}  // namespace
}  // namespace tokentap

// The metering observer's summary of a request (RequestContext::llm) for golden recordings
// replayed through a real worker: the client sends the recorded request, the fake upstream
// answers with the recorded response, and the summary must bill the tokens expect.json lists,
// at the hand-computed price of the built-in table.
#include <catch2/catch.hpp>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
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
    // Cut before message_delta: the input side message_start reported is exact, 120 x 3
    // (claude-3-7-sonnet) = 360 micro-USD; the output is estimated (checked below).
    {"anthropic/messages_stream_truncated", "partial", "parse_error", 360'000, "claude-3-7-sonnet"},
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
  CHECK(s.usage_source == e.usage_source);
  CHECK(s.usage_missing_reason == e.usage_missing_reason);
  CHECK(s.estimated_input == 0);
  int64_t estimated_nano_usd = 0;
  if (present || s.usage_source == std::string_view("none")) {
    CHECK(s.billed.output == (present ? usage.value("output", 0u) : 0u));
    CHECK(s.billed.reasoning == (present ? usage.value("reasoning", 0u) : 0u));
    CHECK(s.estimated_output == 0);
  } else {
    // A cut stream: the output placeholder is replaced by the estimate from its content,
    // billed at the output price (claude-3-7-sonnet: 15 USD per million tokens).
    CHECK(s.estimated_output > 0);
    CHECK(s.billed.output == s.estimated_output);
    estimated_nano_usd = static_cast<int64_t>(s.estimated_output) * 15'000;
  }

  CHECK(s.priced == (e.nano_usd != 0));
  CHECK_FALSE(s.unpriced);
  CHECK(s.nano_usd == e.nano_usd + estimated_nano_usd);
  CHECK(s.priced_as == e.priced_as);
  CHECK(error_class_name(s.provider_error_class) == facts.value("error_class", "none"));
}

// `rec` with every `from` replaced by `to` in its target, request and response bodies.
Recording vary(const Recording& rec,
               std::initializer_list<std::pair<std::string, std::string>> subs) {
  Recording out = rec;
  for (const auto& [from, to] : subs) {
    bool found = false;
    for (std::string* text : {&out.target, &out.request_body, &out.response_body}) {
      for (size_t at = text->find(from); at != std::string::npos; at = text->find(from, at)) {
        text->replace(at, from.size(), to);
        at += to.size();
        found = true;
      }
    }
    INFO(from);
    REQUIRE(found);
  }
  return out;
}

struct Terms {
  const char* name;
  Recording rec;
  int64_t nano_usd;  // 0: unpriced
  const char* pricing_rule;
  const char* unpriced_reason;
  const char* service_tier;
  int64_t cache_read_savings;
};

// Real recordings with the terms the provider reported varied: the service tier (a price line
// of its own, or unknown), the inference region (an uplift, or unknown), and the prompt size
// one token at and one above a long-context threshold. Exact nano-USD by hand from
// pricing/prices.json.
std::vector<Terms> terms_cases() {
  const Recording& openai = recording("openai/chat_nonstream_tool_calls");
  const std::pair<std::string, std::string> tier{"\"service_tier\": \"default\"", ""};
  auto openai_tier = [&](const std::string& name) {
    return vary(openai, {{tier.first, "\"service_tier\": \"" + name + "\""}});
  };
  const Recording& anthropic = recording("anthropic/messages_stream_text");
  auto anthropic_geo = [&](const std::string& geo) {
    return vary(anthropic, {{"claude-3-5-haiku-20241022", "claude-opus-4-6"},
                            {"claude-3-5-haiku-latest", "claude-opus-4-6"},
                            {"\"service_tier\":\"standard\"",
                             "\"service_tier\":\"standard\",\"inference_geo\":\"" + geo + "\""}});
  };
  const Recording& gemini = recording("gemini/generate_content_function_call");
  auto gemini_prompt = [&](const std::string& prompt_tokens) {
    return vary(gemini, {{"gemini-2.5-flash", "gemini-2.5-pro"},
                         {"\"promptTokenCount\": 1250", "\"promptTokenCount\": " + prompt_tokens}});
  };
  return {
      // gpt-4o as reported ("default"): 202 x 2.5 + 1280 x 1.25 + 46 x 10 = 2565 micro-USD;
      // the cache reads saved 1280 x (2.5 - 1.25) = 1600.
      {"openai default", openai, 2'565'000, "gpt-4o", "", "default", 1'600'000},
      // priority line: 202 x 4.25 + 1280 x 2.125 + 46 x 17 = 4360.5 micro-USD.
      {"openai priority", openai_tier("priority"), 4'360'500, "gpt-4o:priority", "", "priority",
       2'720'000},
      // flex: half the standard prices.
      {"openai flex", openai_tier("flex"), 1'282'500, "gpt-4o:flex", "", "flex", 800'000},
      {"openai scale", openai_tier("scale"), 0, "gpt-4o:scale", "unknown_service_tier", "scale", 0},
      // claude-opus-4-6: 25 x 5 + 1800 x 0.5 + 15 x 25 = 1400 micro-USD; US-only x 1.1.
      {"anthropic global", anthropic_geo("global"), 1'400'000, "claude-opus-4-6", "", "standard",
       8'100'000},
      {"anthropic us", anthropic_geo("us"), 1'540'000, "claude-opus-4-6:region_us", "", "standard",
       8'910'000},
      {"anthropic eu", anthropic_geo("eu"), 0, "claude-opus-4-6:region_eu", "unknown_region",
       "standard", 0},
      // gemini-2.5-pro at 200,000 prompt tokens (not above the threshold):
      // 198,976 x 1.25 + 1024 x 0.125 + 162 x 10 = 250,468 micro-USD.
      {"gemini at 200k", gemini_prompt("200000"), 250'468'000, "gemini-2.5-pro", "", "", 1'152'000},
      // One above: the whole request at the long-context prices:
      // 198,977 x 2.5 + 1024 x 0.25 + 162 x 15 = 500,128.5 micro-USD.
      {"gemini above 200k", gemini_prompt("200001"), 500'128'500,
       "gemini-2.5-pro:long_context_200k", "", "", 2'304'000},
  };
}

TEST_CASE("tier, region and long-context terms price the request, or leave it unpriced",
          "[metering][terms]") {
  for (const Terms& t : terms_cases()) {
    INFO(t.name);
    const RequestContext ctx = replay(t.rec);
    const LlmSummary& s = ctx.llm;
    CHECK(s.usage_source == std::string_view("reported"));
    CHECK(s.service_tier == t.service_tier);
    CHECK(s.pricing_rule == t.pricing_rule);
    CHECK_FALSE(s.pricing_version.empty());
    if (t.nano_usd != 0) {
      CHECK(s.priced);
      CHECK_FALSE(s.unpriced);
      CHECK(s.nano_usd == t.nano_usd);
      CHECK(s.unpriced_reason.empty());
      CHECK(s.cache_read_savings_nano_usd == t.cache_read_savings);
      CHECK(s.cache_write_premium_nano_usd == 0);
    } else {
      // Never billed at the standard rate.
      CHECK_FALSE(s.priced);
      CHECK(s.unpriced);
      CHECK(s.nano_usd == 0);
      CHECK(s.unpriced_reason == t.unpriced_reason);
    }
  }
}

}  // namespace
}  // namespace tokentap

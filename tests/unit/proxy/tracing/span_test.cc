#include "proxy/tracing/span.h"

#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "proxy/tracing/tracing_sink.h"

using namespace tokentap;
using nlohmann::json;

namespace {

const json* attr(const json& span, std::string_view key) {
  for (const json& a : span["attributes"]) {
    if (a["key"] == key) return &a["value"];
  }
  return nullptr;
}

RequestContext finished_chat(Route& route) {
  route.upstream.host = "api.anthropic.com";
  route.upstream.port = 443;
  RequestContext ctx;
  ctx.route = &route;
  ctx.request_id = "req-1";
  ctx.agent = "billing-bot";
  ctx.session = "sess-9";
  ctx.status = 200;
  ctx.start = Clock::time_point(std::chrono::seconds(100));
  ctx.end = ctx.start + std::chrono::milliseconds(1500);
  ctx.wall_end = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  ctx.llm.metered = true;
  ctx.llm.provider = "anthropic";
  ctx.llm.operation = "messages";
  ctx.llm.model = "claude-sonnet-4-5";
  ctx.llm.response_model = "claude-sonnet-4-5-20250929";
  ctx.llm.stream = true;
  ctx.llm.billed = {true, 1200, 80, 1000, 0, 0, 0};
  ctx.llm.usage_source = "reported";
  ctx.llm.priced = true;
  ctx.llm.nano_usd = 4'500'000;
  ctx.llm.ttft_seconds = 0.25;
  return ctx;
}

bool is_lower_hex(const json& v, size_t len) {
  if (!v.is_string() || v.get<std::string>().size() != len) return false;
  for (char c : v.get<std::string>()) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

struct RecordingQueue : SpanQueue {
  std::vector<json> spans;
  bool enqueue(json span) override {
    spans.push_back(std::move(span));
    return true;
  }
};

}  // namespace

TEST_CASE("span: GenAI attributes and OTLP JSON shape") {
  Route route;
  RequestContext ctx = finished_chat(route);
  IdGenerator ids(1);
  auto incoming = parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  RequestTrace trace = new_request_trace(ids, incoming, "rojo=1");
  json span = build_span(ctx, trace).json;

  CHECK(span["name"] == "chat claude-sonnet-4-5");
  CHECK(span["kind"] == 3);
  CHECK(span["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(span["parentSpanId"] == "00f067aa0ba902b7");
  CHECK(is_lower_hex(span["spanId"], 16));
  CHECK(span["spanId"] != "00f067aa0ba902b7");
  CHECK(span["traceState"] == "rojo=1");
  // 64-bit integers are decimal strings in OTLP JSON.
  CHECK(span["endTimeUnixNano"] == "1700000000000000000");
  CHECK(span["startTimeUnixNano"] == "1699999998500000000");
  CHECK(span["events"][0]["name"] == "gen_ai.first_token");
  CHECK(span["events"][0]["timeUnixNano"] == "1699999998750000000");
  CHECK(span["status"] == json::object());

  CHECK(*attr(span, "gen_ai.operation.name") == json{{"stringValue", "chat"}});
  CHECK(*attr(span, "gen_ai.provider.name") == json{{"stringValue", "anthropic"}});
  CHECK(*attr(span, "gen_ai.request.model") == json{{"stringValue", "claude-sonnet-4-5"}});
  CHECK((*attr(span, "gen_ai.response.model"))["stringValue"] == "claude-sonnet-4-5-20250929");
  CHECK(*attr(span, "gen_ai.usage.input_tokens") == json{{"intValue", "1200"}});
  CHECK(*attr(span, "gen_ai.usage.output_tokens") == json{{"intValue", "80"}});
  CHECK(*attr(span, "gen_ai.usage.cache_read.input_tokens") == json{{"intValue", "1000"}});
  CHECK(attr(span, "gen_ai.usage.cache_write.input_tokens") == nullptr);
  CHECK(*attr(span, "gen_ai.conversation.id") == json{{"stringValue", "sess-9"}});
  CHECK(*attr(span, "server.address") == json{{"stringValue", "api.anthropic.com"}});
  CHECK(*attr(span, "server.port") == json{{"intValue", "443"}});
  CHECK(*attr(span, "http.response.status_code") == json{{"intValue", "200"}});
  CHECK(*attr(span, "tokentap.cost_usd") == json{{"doubleValue", 0.0045}});
  CHECK(*attr(span, "tokentap.request_id") == json{{"stringValue", "req-1"}});
  CHECK(*attr(span, "tokentap.agent") == json{{"stringValue", "billing-bot"}});
  CHECK(attr(span, "error.type") == nullptr);
  // Every attribute value is exactly one AnyValue member.
  for (const json& a : span["attributes"]) {
    REQUIRE(a["value"].size() == 1);
  }

  json body = json::parse(otlp_request_body({span}, "tokentap"));
  const json& rs = body["resourceSpans"][0];
  CHECK(rs["resource"]["attributes"][0] ==
        json{{"key", "service.name"}, {"value", {{"stringValue", "tokentap"}}}});
  CHECK(rs["scopeSpans"][0]["scope"]["name"] == "tokentap");
  CHECK(rs["scopeSpans"][0]["spans"][0] == span);
}

TEST_CASE("span: a failed request is an ERROR span with error.type, and always kept") {
  Route route;
  RequestContext ctx = finished_chat(route);
  ctx.status = 429;
  ctx.llm.provider_error_class = ErrorClass::rate_limited;
  ctx.llm.billed = {};
  ctx.llm.ttft_seconds = -1;
  RequestTrace trace;
  IdGenerator ids(3);
  trace = new_request_trace(ids, std::nullopt, "");
  SpanRecord rec = build_span(ctx, trace);
  CHECK(rec.failed);
  CHECK(rec.json["status"]["code"] == 2);
  CHECK(attr(rec.json, "error.type") != nullptr);
  CHECK(attr(rec.json, "gen_ai.usage.output_tokens") == nullptr);
  CHECK_FALSE(rec.json.contains("parentSpanId"));
  CHECK_FALSE(rec.json.contains("events"));

  auto queue = std::make_shared<RecordingQueue>();
  TracingSink sink({.sample_ratio = 0.0}, queue, {}, 5);
  sink.on_request_end(ctx);
  REQUIRE(queue->spans.size() == 1);
  ctx.status = 200;
  ctx.llm.provider_error_class = ErrorClass::none;
  sink.on_request_end(ctx);  // ratio 0: a success is sampled out
  CHECK(queue->spans.size() == 1);
  CHECK(sink.sampled_out() == 1);
  RequestContext plain;  // not an LLM request: no span
  sink.on_request_end(plain);
  CHECK(sink.sampled_out() == 1);
}

#include "proxy/tracing/tracing_stage.h"

#include <catch2/catch.hpp>
#include <vector>

using namespace tokentap;

namespace {

class RecordingQueue : public SpanQueue {
 public:
  bool enqueue(nlohmann::json span) override {
    spans.push_back(std::move(span));
    return true;
  }
  std::vector<nlohmann::json> spans;
};

TracingSettings enabled_settings() {
  TracingSettings s;
  s.enabled = true;
  s.endpoint = "http://127.0.0.1:4318/v1/traces";
  return s;
}

RequestContext metered_request() {
  RequestContext ctx;
  ctx.llm.metered = true;
  ctx.llm.operation = "chat_completions";
  ctx.llm.provider = "openai";
  ctx.llm.model = "gpt-4o-mini";
  ctx.status = 200;
  ctx.start = Clock::now();
  ctx.end = ctx.start + std::chrono::milliseconds(5);
  ctx.wall_end = std::chrono::system_clock::now();
  return ctx;
}

}  // namespace

TEST_CASE("tracing stages: disabled, nothing is added and no span is made") {
  TracingHub hub;
  hub.configure(TracingSettings{});
  auto worker = std::make_shared<WorkerTracing>(hub);
  auto queue = std::make_shared<RecordingQueue>();
  TraceHeaderStage stage(worker, 1);
  TraceCompletionSink sink(worker, queue, 2);
  RequestContext ctx = metered_request();
  HeaderEdits edits;
  stage.on_request_head(
      ctx, {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, edits);
  CHECK_FALSE(ctx.trace);
  CHECK(edits.request_lines.empty());
  CHECK(edits.request_drop.empty());
  CHECK(edits.response_lines.empty());
  sink.on_request_end(ctx);
  CHECK(queue->spans.empty());
}

TEST_CASE("tracing stages: the client's trace goes upstream and into the span") {
  TracingHub hub;
  hub.configure(enabled_settings());
  auto worker = std::make_shared<WorkerTracing>(hub);
  auto queue = std::make_shared<RecordingQueue>();
  TraceHeaderStage stage(worker, 1);
  TraceCompletionSink sink(worker, queue, 2);
  RequestContext ctx = metered_request();
  HeaderEdits edits;
  stage.on_request_head(
      ctx, {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, edits);
  REQUIRE(ctx.trace);
  std::string span_id = to_hex(ctx.trace->span_id);
  CHECK(edits.request_drop == std::vector<std::string>{"traceparent", "tracestate"});
  CHECK(edits.request_lines ==
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-" + span_id + "-01\r\n");
  CHECK(edits.response_lines.empty());  // not configured
  sink.on_request_end(ctx);
  REQUIRE(queue->spans.size() == 1);
  CHECK(queue->spans[0]["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(queue->spans[0]["spanId"] == span_id);
  CHECK(queue->spans[0]["parentSpanId"] == "00f067aa0ba902b7");
}

TEST_CASE("tracing stages: a reload's settings reach the workers' next requests") {
  TracingHub hub;
  hub.configure(enabled_settings());
  auto worker = std::make_shared<WorkerTracing>(hub);
  auto queue = std::make_shared<RecordingQueue>();
  TraceHeaderStage stage(worker, 1);
  TraceCompletionSink sink(worker, queue, 2);

  TracingSettings next = enabled_settings();
  next.propagate_response_traceparent = true;
  next.sample_ratio = 0;
  hub.configure(next);
  RequestContext ctx = metered_request();
  HeaderEdits edits;
  stage.on_request_head(ctx, {}, edits);
  REQUIRE(ctx.trace);
  CHECK(edits.response_drop == std::vector<std::string>{"traceparent"});
  CHECK(edits.response_lines == "traceparent: 00-" + to_hex(ctx.trace->trace_id) + "-" +
                                    to_hex(ctx.trace->span_id) + "-01\r\n");
  sink.on_request_end(ctx);
  CHECK(queue->spans.empty());  // ratio 0, succeeded
  ctx.status = 500;
  ctx.error = ErrorType::timeout;
  sink.on_request_end(ctx);
  CHECK(queue->spans.size() == 1);  // failures are kept

  hub.configure(TracingSettings{});
  RequestContext later = metered_request();
  HeaderEdits none;
  stage.on_request_head(later, {}, none);
  CHECK_FALSE(later.trace);
}

TEST_CASE("tracing stages: session traces share one trace id per session") {
  TracingHub hub;
  TracingSettings settings = enabled_settings();
  settings.session_traces = true;
  hub.configure(settings);
  auto worker = std::make_shared<WorkerTracing>(hub);
  TraceHeaderStage stage(worker, 1);
  RequestContext a = metered_request();
  RequestContext b = metered_request();
  RequestContext other = metered_request();
  a.session = b.session = "conv-1";
  other.session = "conv-2";
  HeaderEdits e1, e2, e3;
  stage.on_request_head(a, {}, e1);
  stage.on_request_head(b, {}, e2);
  stage.on_request_head(other, {}, e3);
  CHECK(a.trace->trace_id == b.trace->trace_id);
  CHECK(a.trace->trace_id == session_trace_id("conv-1"));
  CHECK(a.trace->span_id != b.trace->span_id);
  CHECK(other.trace->trace_id != a.trace->trace_id);
  // An incoming traceparent wins over the session's trace.
  RequestContext traced = metered_request();
  traced.session = "conv-1";
  HeaderEdits e4;
  stage.on_request_head(
      traced, {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, e4);
  CHECK(to_hex(traced.trace->trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
}

#include "proxy/tracing/span.h"

#include <chrono>

#include "proxy/http/errors.h"

namespace tokentap {

using nlohmann::json;

RequestTrace new_request_trace(IdGenerator& ids, const std::optional<TraceParent>& incoming,
                               std::string_view incoming_tracestate) {
  RequestTrace t;
  if (incoming) {
    t.trace_id = incoming->trace_id;
    t.parent_span_id = incoming->parent_id;
    t.parent_sampled = incoming->sampled;
    t.tracestate = bounded_tracestate(incoming_tracestate);
  } else {
    t.trace_id = ids.trace_id();
  }
  t.span_id = ids.span_id();
  return t;
}

json otlp_attr(std::string_view key, std::string_view value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}
json otlp_attr(std::string_view key, int64_t value) {
  return {{"key", key}, {"value", {{"intValue", std::to_string(value)}}}};
}
json otlp_attr(std::string_view key, double value) {
  return {{"key", key}, {"value", {{"doubleValue", value}}}};
}
json otlp_attr_bool(std::string_view key, bool value) {
  return {{"key", key}, {"value", {{"boolValue", value}}}};
}

std::string_view otel_operation(std::string_view op) {
  if (op == "chat_completions" || op == "responses" || op == "messages") return "chat";
  if (op == "completions") return "text_completion";
  if (op == "embeddings" || op == "embed_content") return "embeddings";
  if (op == "generate_content") return "generate_content";
  return op;  // "count_tokens", "other": no GenAI name; keep ours
}

std::string_view otel_provider(std::string_view p) {
  if (p == "azure_openai") return "azure.ai.openai";
  if (p == "gemini") return "gcp.gemini";
  return p;  // "openai", "anthropic", "openai_compatible"
}

namespace {

int64_t unix_nanos(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string nanos_string(int64_t n) { return std::to_string(n < 0 ? 0 : n); }

}  // namespace

SpanRecord build_span(const RequestContext& ctx, const RequestTrace& trace) {
  const LlmSummary& llm = ctx.llm;
  std::string_view op = llm.metered ? otel_operation(llm.operation) : std::string_view("http");
  std::string name(op);
  if (llm.metered && !llm.model.empty()) {
    name += ' ';
    name += llm.model;
  }

  int64_t end_ns = unix_nanos(ctx.wall_end);
  int64_t duration_ns =
      ctx.end > ctx.start
          ? std::chrono::duration_cast<std::chrono::nanoseconds>(ctx.end - ctx.start).count()
          : 0;
  int64_t start_ns = end_ns - duration_ns;

  json attrs = json::array();
  if (llm.metered) {
    attrs.push_back(otlp_attr("gen_ai.operation.name", op));
    attrs.push_back(otlp_attr("gen_ai.provider.name", otel_provider(llm.provider)));
    attrs.push_back(otlp_attr("gen_ai.request.model", llm.model));
    if (!llm.response_model.empty()) {
      attrs.push_back(otlp_attr("gen_ai.response.model", llm.response_model));
    }
    const TokenUsage& u = llm.billed;
    if (u.present || u.input > 0) {
      // input already counts cached tokens (the parsers add Anthropic's cache fields in).
      attrs.push_back(otlp_attr("gen_ai.usage.input_tokens", static_cast<int64_t>(u.input)));
    }
    if (u.present) {
      attrs.push_back(otlp_attr("gen_ai.usage.output_tokens", static_cast<int64_t>(u.output)));
      if (u.cache_read > 0) {
        attrs.push_back(
            otlp_attr("gen_ai.usage.cache_read.input_tokens", static_cast<int64_t>(u.cache_read)));
      }
      if (u.cache_write > 0) {
        attrs.push_back(otlp_attr("gen_ai.usage.cache_write.input_tokens",
                                  static_cast<int64_t>(u.cache_write)));
      }
      if (u.reasoning > 0) {
        attrs.push_back(
            otlp_attr("gen_ai.usage.reasoning.output_tokens", static_cast<int64_t>(u.reasoning)));
      }
    }
    if (!ctx.session.empty()) attrs.push_back(otlp_attr("gen_ai.conversation.id", ctx.session));
    attrs.push_back(otlp_attr_bool("tokentap.stream", llm.stream));
    attrs.push_back(otlp_attr("tokentap.usage_source", llm.usage_source));
    if (llm.priced) {
      attrs.push_back(otlp_attr("tokentap.cost_usd", static_cast<double>(llm.nano_usd) / 1e9));
    }
    if (llm.ttft_seconds >= 0) {
      attrs.push_back(otlp_attr("tokentap.time_to_first_token_s", llm.ttft_seconds));
    }
  }
  if (ctx.route != nullptr) {
    attrs.push_back(otlp_attr("server.address", ctx.route->upstream.host));
    attrs.push_back(otlp_attr("server.port", static_cast<int64_t>(ctx.route->upstream.port)));
  }
  if (ctx.status != 0) {
    attrs.push_back(otlp_attr("http.response.status_code", static_cast<int64_t>(ctx.status)));
  }
  ErrorOutcome outcome = ctx.outcome();
  if (outcome.failed()) attrs.push_back(otlp_attr("error.type", outcome.error_type));
  attrs.push_back(otlp_attr("tokentap.request_id", ctx.request_id));
  if (!ctx.agent.empty()) attrs.push_back(otlp_attr("tokentap.agent", ctx.agent));

  json span = {
      {"traceId", to_hex(trace.trace_id)},
      {"spanId", to_hex(trace.span_id)},
  };
  if (!trace.tracestate.empty()) span["traceState"] = trace.tracestate;
  if (trace.parent_span_id) span["parentSpanId"] = to_hex(*trace.parent_span_id);
  span["name"] = name;
  span["kind"] = 3;  // SPAN_KIND_CLIENT
  span["startTimeUnixNano"] = nanos_string(start_ns);
  span["endTimeUnixNano"] = nanos_string(end_ns);
  span["attributes"] = std::move(attrs);
  if (llm.metered && llm.ttft_seconds >= 0) {
    int64_t first = start_ns + static_cast<int64_t>(llm.ttft_seconds * 1e9);
    span["events"] =
        json::array({{{"timeUnixNano", nanos_string(first)}, {"name", "gen_ai.first_token"}}});
  }
  if (outcome.failed()) {
    span["status"] = {{"code", 2}, {"message", outcome.error_type}};  // STATUS_CODE_ERROR
  } else {
    span["status"] = json::object();  // STATUS_CODE_UNSET
  }
  return SpanRecord{std::move(span), outcome.failed()};
}

std::string otlp_request_body(const std::vector<json>& spans, std::string_view service_name,
                              const std::vector<std::pair<std::string, std::string>>& resource) {
  json resource_attrs = json::array(
      {otlp_attr("service.name", service_name), otlp_attr("telemetry.sdk.name", "tokentap")});
  for (const auto& [key, value] : resource) resource_attrs.push_back(otlp_attr(key, value));
  json body = {
      {"resourceSpans", json::array({{
                            {"resource", {{"attributes", std::move(resource_attrs)}}},
                            {"scopeSpans", json::array({{{"scope", {{"name", "tokentap"}}},
                                                         {"schemaUrl", kSchemaUrl},
                                                         {"spans", spans}}})},
                        }})},
  };
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tokentap

#include "proxy/metering/llm_metrics.h"

#include <charconv>
#include <chrono>
#include <string>
#include <utility>

#include "pricing/cost.h"

namespace tokentap {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kDurationBuckets = {0.05, 0.1, 0.25, 0.5, 1,   2.5, 5,
                                                      10,   20,  30,   60,  120, 300, 600};
const Histogram::BucketBoundaries kTtftBuckets = {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1,
                                                  1.5,  2,   3,   5,   10,  20,   60};
const Histogram::BucketBoundaries kCostBuckets = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                  0.1,    0.5,    1,     5,     10};
const Histogram::BucketBoundaries kTpotBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03,
                                                  0.05,  0.075,  0.1,   0.2,  0.5,  1};
// An agent's time running a tool: a lookup to a long build or a human approval.
const Histogram::BucketBoundaries kToolDurationBuckets = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                          5,    10,  30,   60,  120, 300};
// The OpenTelemetry GenAI semantic conventions' advisory buckets.
const Histogram::BucketBoundaries kOtelTokenBuckets = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
const Histogram::BucketBoundaries kOtelDurationBuckets = {
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
const Histogram::BucketBoundaries kOtelTtftBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};

// Labels whose values come from users or providers are capped; the key names the value set
// the cap counts in (a model is one value whatever the metric). Labels with a fixed vocabulary
// (type, operation, the usage-missing and parse-error reasons, ...) are not capped.
std::string_view cap_key(bool finish_reasons, std::string_view name) {
  if (name == "agent" || name == "tool") return name;
  if (name == "model" || name == "gen_ai_request_model" || name == "gen_ai_response_model") {
    return "model";
  }
  if (name == "reason" && finish_reasons) return "finish_reason";
  return {};
}

const char* otel_system(ApiProvider p) {
  switch (p) {
    case ApiProvider::openai:
      return "openai";
    case ApiProvider::azure_openai:
      return "az.ai.openai";
    case ApiProvider::openai_compatible:
      return "openai";
    case ApiProvider::anthropic:
      return "anthropic";
    case ApiProvider::gemini:
      return "gcp.gemini";
  }
  return "openai";
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

LlmMetrics::LlmMetrics(prometheus::Registry& registry, const MetricsSettings& metrics)
    : limiter(metrics.max_values_per_label),
      requests(BuildCounter()
                   .Name("llm_requests_total")
                   .Help("LLM API requests by agent, provider, model, operation, HTTP status and "
                         "error type")
                   .Register(registry)),
      duration(BuildHistogram()
                   .Name("llm_request_duration_seconds")
                   .Help("Time from the request's first byte to the response's last byte")
                   .Register(registry)),
      ttft(BuildHistogram()
               .Name("llm_time_to_first_token_seconds")
               .Help("Streams: time from the request to the first content-bearing event")
               .Register(registry)),
      tpot(BuildHistogram()
               .Name("llm_time_per_output_token_seconds")
               .Help("Streams: time between first and last content event per output token "
                     "after the first")
               .Register(registry)),
      tokens(BuildCounter()
                 .Name("llm_tokens_total")
                 .Help("Tokens billed, by type: input (all, incl. cache), output (incl. "
                       "reasoning), and the cache_read, cache_write, reasoning subsets")
                 .Register(registry)),
      tool_calls(BuildCounter()
                     .Name("llm_tool_calls_total")
                     .Help("Tool calls the model made, by tool name and kind: function (for "
                           "the client to run) or server (run by the provider)")
                     .Register(registry)),
      tool_results(BuildCounter()
                       .Name("llm_tool_results_total")
                       .Help("Tool results sent back to the model in the newest turn, by "
                             "tool and status (success or error), every provider")
                       .Register(registry)),
      tool_duration(BuildHistogram()
                        .Name("llm_tool_duration_seconds")
                        .Help("The agent's time running a tool: from the end of the response "
                              "that asked for the call to the arrival of the request with its "
                              "result")
                        .Register(registry)),
      finish_reasons(BuildCounter()
                         .Name("llm_finish_reasons_total")
                         .Help("Responses by the provider's finish / stop reason")
                         .Register(registry)),
      inflight(BuildGauge()
                   .Name("llm_inflight_requests")
                   .Help("LLM API requests in progress")
                   .Register(registry)),
      usage_missing(BuildCounter()
                        .Name("llm_usage_missing_total")
                        .Help("Successful billable requests whose token usage the provider "
                              "did not report, by reason (billed from estimates where possible: "
                              "see llm_estimated_tokens_total)")
                        .Register(registry)),
      parse_errors(BuildCounter()
                       .Name("llm_parse_errors_total")
                       .Help("Request or response bodies that could not be metered, by reason "
                             "(traffic is forwarded unchanged)")
                       .Register(registry)),
      ratelimit_remaining(BuildGauge()
                              .Name("llm_upstream_ratelimit_remaining")
                              .Help("Provider rate-limit headroom from the latest response")
                              .Register(registry)),
      ratelimit_limit(BuildGauge()
                          .Name("llm_upstream_ratelimit_limit")
                          .Help("Provider rate limit from the latest response")
                          .Register(registry)),
      stream_usage_added(BuildCounter()
                             .Name("tokentap_stream_usage_requested_total")
                             .Help("Streaming requests to which tokentap added "
                                   "stream_options.include_usage")
                             .Register(registry)),
      cost(BuildCounter()
               .Name("llm_cost_usd_total")
               .Help("Cost of the tokens billed, in USD, from the price table")
               .Register(registry)),
      request_cost(BuildHistogram()
                       .Name("llm_request_cost_usd")
                       .Help("Cost of one request, in USD")
                       .Register(registry)),
      unpriced(BuildCounter()
                   .Name("llm_unpriced_requests_total")
                   .Help("Requests with token usage that were not priced, by reason: "
                         "unknown_model, or unknown_service_tier / unknown_region (the price "
                         "table has the model but not the tier or region the provider "
                         "reported; never priced at the standard rate)")
                   .Register(registry)),
      estimated_tokens(BuildCounter()
                           .Name("llm_estimated_tokens_total")
                           .Help("The estimated part of llm_tokens_total, by type (input, "
                                 "output): requests whose stream ended before the provider "
                                 "reported usage (usage_source partial or estimated)")
                           .Register(registry)),
      cache_savings(BuildCounter()
                        .Name("llm_cache_savings_usd_total")
                        .Help("What prompt-cache reads saved against the uncached input price, "
                              "in USD, before cache-write surcharges (a counter cannot go down: "
                              "the net saving is this minus llm_cache_write_premium_usd_total)")
                        .Register(registry)),
      cache_write_premium(BuildCounter()
                              .Name("llm_cache_write_premium_usd_total")
                              .Help("What prompt-cache writes cost above the uncached input "
                                    "price, in USD; subtract from llm_cache_savings_usd_total "
                                    "for the net saving")
                              .Register(registry)) {
  if (metrics.otel_semconv) {
    otel_token_usage = &BuildHistogram()
                            .Name("gen_ai_client_token_usage")
                            .Help("OpenTelemetry GenAI: tokens used per request, by token type")
                            .Register(registry);
    otel_duration = &BuildHistogram()
                         .Name("gen_ai_client_operation_duration_seconds")
                         .Help("OpenTelemetry GenAI: duration of a GenAI operation")
                         .Register(registry);
    otel_ttft = &BuildHistogram()
                     .Name("gen_ai_server_time_to_first_token_seconds")
                     .Help("OpenTelemetry GenAI: time to the first token of a stream")
                     .Register(registry);
  }
}

HandleCache LlmMetrics::make_cache() {
  return HandleCache(
      limiter, [finish_reasons = &finish_reasons](const void* family, std::string_view label) {
        return cap_key(family == finish_reasons, label);
      });
}

// Tokens by type (reported and estimated) and usage that could not be read.
void LlmMetricsSink::count_tokens(const std::string& agent, const LlmSummary& s) {
  const std::string& provider = s.provider;
  const std::string& model = s.model;
  const TokenUsage& u = s.billed;
  auto add = [&](const char* type, uint64_t n) {
    if (n == 0) return;
    cache_
        .counter(m_.tokens,
                 {{"agent", agent}, {"provider", provider}, {"model", model}, {"type", type}})
        .Increment(static_cast<double>(n));
  };
  add("input", u.input);
  add("cache_read", u.cache_read);
  add("cache_write", u.cache_write);
  add("output", u.output);
  add("reasoning", u.reasoning);
  auto add_estimated = [&](const char* type, uint64_t n) {
    if (n == 0) return;
    cache_
        .counter(m_.estimated_tokens,
                 {{"agent", agent}, {"provider", provider}, {"model", model}, {"type", type}})
        .Increment(static_cast<double>(n));
  };
  add_estimated("input", s.estimated_input);
  add_estimated("output", s.estimated_output);
  if (!s.usage_missing_reason.empty()) {
    cache_
        .counter(m_.usage_missing, {{"agent", agent},
                                    {"provider", provider},
                                    {"model", model},
                                    {"reason", s.usage_missing_reason}})
        .Increment();
  }
}

void LlmMetricsSink::on_request_end(const RequestContext& ctx) {
  const LlmSummary& s = ctx.llm;
  if (!s.metered) return;
  const std::string& agent = ctx.agent;
  const std::string& provider = s.provider;
  const std::string& model = s.model;
  std::string_view operation = s.operation;
  std::string_view error_type = ctx.outcome().error_type;
  char code[16];
  auto [code_end, ec] = std::to_chars(code, code + sizeof code, ctx.status);
  double duration = seconds_between(ctx.start, ctx.end);

  cache_
      .counter(m_.requests, {{"agent", agent},
                             {"provider", provider},
                             {"model", model},
                             {"operation", operation},
                             {"code", std::string_view(code, code_end)},
                             {"error_type", error_type}})
      .Increment();
  cache_
      .histogram(m_.duration,
                 {{"agent", agent},
                  {"provider", provider},
                  {"model", model},
                  {"operation", operation},
                  {"stream", s.stream ? "true" : "false"}},
                 kDurationBuckets)
      .Observe(duration);

  if (s.ttft_seconds >= 0) {
    cache_
        .histogram(m_.ttft, {{"agent", agent}, {"provider", provider}, {"model", model}},
                   kTtftBuckets)
        .Observe(s.ttft_seconds);
  }
  if (s.tpot_seconds >= 0) {
    cache_
        .histogram(m_.tpot, {{"agent", agent}, {"provider", provider}, {"model", model}},
                   kTpotBuckets)
        .Observe(s.tpot_seconds);
  }

  count_tokens(agent, s);

  for (const ToolCallCount& t : s.tool_calls) {
    cache_
        .counter(m_.tool_calls, {{"agent", agent},
                                 {"provider", provider},
                                 {"model", model},
                                 {"tool", t.name},
                                 {"kind", tool_kind_name(t.kind)}})
        .Increment(t.count);
  }
  for (const ToolResultOutcome& t : s.tool_results) {
    cache_
        .counter(m_.tool_results,
                 {{"agent", agent}, {"tool", t.tool}, {"status", tool_result_status(t)}})
        .Increment();
    if (t.seconds >= 0) {
      cache_.histogram(m_.tool_duration, {{"agent", agent}, {"tool", t.tool}}, kToolDurationBuckets)
          .Observe(t.seconds);
    }
  }
  if (!s.finish_reason.empty()) {
    cache_
        .counter(m_.finish_reasons, {{"agent", agent},
                                     {"provider", provider},
                                     {"model", model},
                                     {"reason", s.finish_reason}})
        .Increment();
  }
  for (size_t k = 0; k < kParseErrorKindCount; ++k) {
    if (s.parse_errors[k] == 0) continue;
    cache_
        .counter(m_.parse_errors,
                 {{"provider", provider},
                  {"reason", parse_error_kind_name(static_cast<ParseErrorKind>(k))}})
        .Increment(s.parse_errors[k]);
  }
  for (size_t r = 0; r < kRateLimitResourceCount; ++r) {
    const RateLimit& rl = s.rate_limits[r];
    const char* resource = rate_limit_resource_name(static_cast<RateLimitResource>(r));
    if (rl.remaining >= 0) {
      cache_.gauge(m_.ratelimit_remaining, {{"provider", provider}, {"resource", resource}})
          .Set(static_cast<double>(rl.remaining));
    }
    if (rl.limit >= 0) {
      cache_.gauge(m_.ratelimit_limit, {{"provider", provider}, {"resource", resource}})
          .Set(static_cast<double>(rl.limit));
    }
  }
  record_otel(ctx, error_type, duration);

  if (s.priced) {
    double usd = static_cast<double>(s.nano_usd) / static_cast<double>(pricing::kNanoPerUsd);
    cache_.counter(m_.cost, {{"agent", agent}, {"provider", provider}, {"model", model}})
        .Increment(usd);
    cache_.histogram(m_.request_cost, {{"agent", agent}}, kCostBuckets).Observe(usd);
    auto add_usd = [&](prometheus::Family<prometheus::Counter>& family, int64_t nano_usd) {
      if (nano_usd <= 0) return;
      cache_.counter(family, {{"agent", agent}, {"provider", provider}, {"model", model}})
          .Increment(static_cast<double>(nano_usd) / static_cast<double>(pricing::kNanoPerUsd));
    };
    add_usd(m_.cache_savings, s.cache_read_savings_nano_usd);
    add_usd(m_.cache_write_premium, s.cache_write_premium_nano_usd);
  } else if (s.unpriced) {
    cache_
        .counter(m_.unpriced, {{"agent", agent},
                               {"provider", provider},
                               {"model", model},
                               {"reason", s.unpriced_reason}})
        .Increment();
  }
}

void LlmMetricsSink::record_otel(const RequestContext& ctx, std::string_view error_type,
                                 double duration) {
  if (m_.otel_duration == nullptr) return;
  const LlmSummary& s = ctx.llm;
  const char* system = otel_system(s.api);
  const char* op = otel_operation_name(s.api_operation);
  const std::string& model = s.model;
  const std::string& response_model = s.response_model.empty() ? model : s.response_model;
  cache_
      .histogram(*m_.otel_duration,
                 {{"gen_ai_operation_name", op},
                  {"gen_ai_system", system},
                  {"gen_ai_request_model", model},
                  {"gen_ai_response_model", response_model},
                  {"error_type", error_type == "none" ? "" : error_type}},
                 kOtelDurationBuckets)
      .Observe(duration);
  if (s.billed.input + s.billed.output > 0) {
    for (auto [type, n] : {std::pair<const char*, uint64_t>{"input", s.billed.input},
                           std::pair<const char*, uint64_t>{"output", s.billed.output}}) {
      cache_
          .histogram(*m_.otel_token_usage,
                     {{"gen_ai_operation_name", op},
                      {"gen_ai_system", system},
                      {"gen_ai_request_model", model},
                      {"gen_ai_response_model", response_model},
                      {"gen_ai_token_type", type}},
                     kOtelTokenBuckets)
          .Observe(static_cast<double>(n));
    }
  }
  if (s.ttft_seconds >= 0) {
    cache_
        .histogram(*m_.otel_ttft,
                   {{"gen_ai_operation_name", op},
                    {"gen_ai_system", system},
                    {"gen_ai_request_model", model}},
                   kOtelTtftBuckets)
        .Observe(s.ttft_seconds);
  }
}

}  // namespace tokentap

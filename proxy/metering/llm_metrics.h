// The llm_* Prometheus metrics and, with metrics.otel_semconv, the OpenTelemetry GenAI ones
// (gen_ai_*), all derived from a finished request's LlmSummary (RequestContext::llm).
// LlmMetrics owns the families (shared by all workers, registered once); each worker has its
// own LlmMetricsSink with its own HandleCache. Label values that users or providers control
// (agent, model, tool, finish reason) are capped at metrics.max_values_per_label distinct
// values per label by `limiter`; later ones are reported as "other".
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "config/config.h"
#include "proxy/core/exchange.h"
#include "proxy/core/handle_cache.h"
#include "proxy/core/label_limiter.h"

namespace tokentap {

struct LlmMetrics {
  // `metrics` is fixed for the life of the process (label cap, OpenTelemetry names).
  LlmMetrics(prometheus::Registry& registry, const MetricsSettings& metrics);

  // A per-worker handle cache that caps the user- and provider-controlled labels.
  HandleCache make_cache();

  LabelLimiter limiter;
  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& ttft;
  prometheus::Family<prometheus::Histogram>& tpot;
  prometheus::Family<prometheus::Counter>& tokens;
  prometheus::Family<prometheus::Counter>& tool_calls;
  prometheus::Family<prometheus::Counter>& tool_results;
  prometheus::Family<prometheus::Histogram>& tool_duration;
  prometheus::Family<prometheus::Counter>& finish_reasons;
  prometheus::Family<prometheus::Gauge>& inflight;  // moved by the observer while a request runs
  prometheus::Family<prometheus::Counter>& usage_missing;
  prometheus::Family<prometheus::Counter>& parse_errors;
  prometheus::Family<prometheus::Gauge>& ratelimit_remaining;
  prometheus::Family<prometheus::Gauge>& ratelimit_limit;
  prometheus::Family<prometheus::Counter>& stream_usage_added;  // by the stream usage rewriter
  prometheus::Family<prometheus::Counter>& cost;
  prometheus::Family<prometheus::Histogram>& request_cost;
  prometheus::Family<prometheus::Counter>& unpriced;
  prometheus::Family<prometheus::Counter>& estimated_tokens;
  prometheus::Family<prometheus::Counter>& cache_savings;
  prometheus::Family<prometheus::Counter>& cache_write_premium;
  // OpenTelemetry GenAI semantic-convention names; null unless metrics.otel_semconv.
  prometheus::Family<prometheus::Histogram>* otel_token_usage = nullptr;
  prometheus::Family<prometheus::Histogram>* otel_duration = nullptr;
  prometheus::Family<prometheus::Histogram>* otel_ttft = nullptr;
};

// Records one worker's finished metered requests (ctx.llm.metered) into the families; ignores
// every other request.
class LlmMetricsSink final : public CompletionSink {
 public:
  explicit LlmMetricsSink(LlmMetrics& metrics) : m_(metrics), cache_(metrics.make_cache()) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  void count_tokens(const std::string& agent, const LlmSummary& s);
  void record_otel(const RequestContext& ctx, std::string_view error_type, double duration);

  LlmMetrics& m_;
  HandleCache cache_;
};

}  // namespace tokentap

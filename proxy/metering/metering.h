// Provider-aware metering: turns each request's LlmFacts (parsers/) into its LlmSummary
// (RequestContext::llm: billed tokens, cost, usage source, provider error), computed once, and
// from that summary the llm_* Prometheus metrics, the usage store, the session and budget
// records. Metering owns the metric families (shared by all workers); each worker gets its own
// handle cache so that a label set seen before costs a hash lookup, not prometheus-cpp's locked
// Family::Add. Label values that users or providers control (agent, model, tool, finish
// reason) are capped at metrics.max_values_per_label distinct values per label; later ones are
// reported as "other".
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "config/config.h"
#include "pricing/price_table.h"
#include "proxy/policy/budgets.h"
#include "proxy/policy/sessions.h"
#include "proxy/core/label_limiter.h"
#include "proxy/core/request_context.h"
#include "proxy/core/runtime.h"
#include "proxy/telemetry/usage_store.h"

namespace tokentap {


class Metering;

// Per-worker handles; used from one loop thread only.
class MeteringCache {
 public:
  explicit MeteringCache(Metering& metering) : metering_(metering) {}

  using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& family, Labels labels);
  prometheus::Gauge& gauge(prometheus::Family<prometheus::Gauge>& family, Labels labels);
  prometheus::Histogram& histogram(prometheus::Family<prometheus::Histogram>& family,
                                   Labels labels, const prometheus::Histogram::BucketBoundaries& b);
  Metering& metering() { return metering_; }
  // LabelLimiter::cap, remembered per worker.
  const std::string& capped_value(std::string_view label, std::string_view value);

 private:
  prometheus::Labels capped(const void* family, Labels labels);
  // The cache key of a label set, built in key_ (no allocation once it has grown).
  const std::string& key_of(const void* family, Labels labels);
  template <class T>
  void bound(std::unordered_map<std::string, T*>& cache);

  Metering& metering_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  std::unordered_map<std::string, prometheus::Gauge*> gauges_;
  std::unordered_map<std::string, prometheus::Histogram*> histograms_;
  std::string key_;
  std::unordered_map<std::string, std::string> capped_values_;  // label \x1f value -> capped
};

class Metering {
 public:
  // `metrics` is fixed for the life of the process (label cap, OpenTelemetry names).
  Metering(prometheus::Registry& registry, const MetricsSettings& metrics, size_t workers);

  // A new observer for one request served by worker `worker_index`, priced and configured by
  // `runtime` (the snapshot the request started with).
  std::unique_ptr<RequestObserver> make_observer(size_t worker_index,
                                                 std::shared_ptr<const Runtime> runtime);

  // Spend budgets fed with each priced request's cost; null when none are configured.
  BudgetTracker* budgets() const { return budgets_; }
  void set_budgets(BudgetTracker* budgets) { budgets_ = budgets; }
  SessionTracker* sessions() const { return sessions_; }
  void set_sessions(SessionTracker* sessions) { sessions_ = sessions; }
  // Per-minute analytics for GET /v1/usage; null when not kept.
  UsageStore* usage() const { return usage_; }
  void set_usage(UsageStore* usage) { usage_ = usage; }
  LabelLimiter& limiter() { return limiter_; }

  prometheus::Family<prometheus::Counter>& requests;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Histogram>& ttft;
  prometheus::Family<prometheus::Histogram>& tpot;
  prometheus::Family<prometheus::Counter>& tokens;
  prometheus::Family<prometheus::Counter>& tool_calls;
  prometheus::Family<prometheus::Counter>& tool_results;
  prometheus::Family<prometheus::Counter>& finish_reasons;
  prometheus::Family<prometheus::Gauge>& inflight;
  prometheus::Family<prometheus::Counter>& usage_missing;
  prometheus::Family<prometheus::Counter>& parse_errors;
  prometheus::Family<prometheus::Gauge>& ratelimit_remaining;
  prometheus::Family<prometheus::Gauge>& ratelimit_limit;
  prometheus::Family<prometheus::Counter>& stream_usage_added;
  prometheus::Family<prometheus::Counter>& cost;
  prometheus::Family<prometheus::Histogram>& request_cost;
  prometheus::Family<prometheus::Counter>& unpriced;
  // OpenTelemetry GenAI semantic-convention names; null unless metrics.otel_semconv.
  prometheus::Family<prometheus::Histogram>* otel_token_usage = nullptr;
  prometheus::Family<prometheus::Histogram>* otel_duration = nullptr;
  prometheus::Family<prometheus::Histogram>* otel_ttft = nullptr;

 private:
  BudgetTracker* budgets_ = nullptr;
  SessionTracker* sessions_ = nullptr;
  UsageStore* usage_ = nullptr;
  LabelLimiter limiter_;
  std::vector<std::unique_ptr<MeteringCache>> caches_;
};


}  // namespace tokentap

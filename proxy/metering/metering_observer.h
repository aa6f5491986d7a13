// Provider-aware metering of each proxied request: the observer drives the provider's parser
// (parsers/) over both bodies, times the stream's content, prices the billed tokens, and fills
// RequestContext::llm (LlmSummary) in on_complete(). It records nothing itself: the llm_*
// metrics, budgets, sessions and the usage store are completion sinks that read ctx.llm.
// While a request runs the observer moves llm_inflight_requests, and its StreamUsageRewriter
// may add stream_options (counted in tokentap_stream_usage_requested_total).
// Tool timing: a response's client tool calls are remembered when it ends (in one store shared
// by the workers, since the agent's next request may land on another worker), and the results a
// later request of the same agent carries are matched to them when its body arrives, giving
// ctx.llm.tool_results their tool and the agent's time running it.
#pragma once

#include <prometheus/registry.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "config/config.h"
#include "proxy/core/handle_cache.h"
#include "proxy/core/label_limiter.h"
#include "proxy/core/request_context.h"
#include "proxy/core/runtime.h"
#include "proxy/metering/llm_metrics.h"
#include "proxy/metering/pending_tool_calls.h"

namespace tokentap {

class Metering {
 public:
  // Registers the LLM metric families; `metrics` is fixed for the life of the process.
  Metering(prometheus::Registry& registry, const MetricsSettings& metrics, size_t workers);

  // A new observer for one request served by worker `worker_index` (on that worker's loop
  // thread), priced and configured by `runtime` (the snapshot the request started with).
  std::unique_ptr<RequestObserver> make_observer(size_t worker_index,
                                                 std::shared_ptr<const Runtime> runtime);

  // The families every worker's LlmMetricsSink records into.
  LlmMetrics& llm_metrics() { return metrics_; }
  // Caps agent, model, tool and finish-reason label values; shared with the session metrics.
  LabelLimiter& limiter() { return metrics_.limiter; }
  PendingToolCalls& pending_tool_calls() { return pending_; }

 private:
  LlmMetrics metrics_;
  PendingToolCalls pending_;
  std::vector<HandleCache> caches_;  // per worker, for the observers' live metrics
};

}  // namespace tokentap

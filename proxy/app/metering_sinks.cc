#include "proxy/app/metering_sinks.h"

#include <memory>
#include <utility>
#include <vector>

#include "proxy/metering/llm_metrics.h"
#include "proxy/policy/spend_sinks.h"
#include "proxy/telemetry/usage_sink.h"

namespace tokentap {

void add_metering_sinks(Pipeline& pipeline, Metering& metering, BudgetTracker& budgets,
                        SessionTracker& sessions, UsageStore& usage) {
  pipeline.sinks.push_back(std::make_unique<LlmMetricsSink>(metering.llm_metrics()));
  pipeline.sinks.push_back(std::make_unique<BudgetSink>(budgets));
  pipeline.sinks.push_back(std::make_unique<SessionSink>(sessions));
  pipeline.sinks.push_back(std::make_unique<UsageSink>(usage, metering.limiter()));
}

}  // namespace tokentap

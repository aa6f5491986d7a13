// Registration of the completion sinks fed by metering, in the order their side effects must
// keep (before the core request counter, recent errors and the access log): the LLM metrics,
// budgets, sessions, the usage store.
#pragma once

#include <cstddef>

#include "proxy/core/exchange.h"
#include "proxy/core/worker.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/policy/budgets.h"
#include "proxy/policy/sessions.h"
#include "proxy/telemetry/usage_store.h"

namespace tokentap {

// Appends one worker's metering sinks to `pipeline` (call once per worker).
void add_metering_sinks(Pipeline& pipeline, Metering& metering, BudgetTracker& budgets,
                        SessionTracker& sessions, UsageStore& usage);

// Until the connection drives a Pipeline itself (the pipeline branch): `observers`, wrapped so
// that each observer's on_complete() is followed by the completion sinks of its worker's
// pipeline (built here, once per worker, by `pipelines`). Delete this when merging it; the
// connection then calls the sinks after on_complete().
ObserverFactory with_completion_sinks(ObserverFactory observers, const PipelineFactory& pipelines,
                                      size_t workers);

}  // namespace tokentap

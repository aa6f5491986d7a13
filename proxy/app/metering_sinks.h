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

}  // namespace tokentap

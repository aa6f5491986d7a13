// The record side of budgets and sessions: completion sinks that feed each finished metered
// request's billed facts (ctx.llm) into the trackers whose admit() decides later requests.
#pragma once

#include "proxy/core/exchange.h"
#include "proxy/policy/budgets.h"
#include "proxy/policy/sessions.h"

namespace tokentap {

// Adds a priced request's cost to the budgets of its agent.
class BudgetSink final : public CompletionSink {
 public:
  explicit BudgetSink(BudgetTracker& budgets) : budgets_(budgets) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  BudgetTracker& budgets_;
};

// Adds a metered request's billed tokens, cost and client tool calls to its session, when it
// names one.
class SessionSink final : public CompletionSink {
 public:
  explicit SessionSink(SessionTracker& sessions) : sessions_(sessions) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  SessionTracker& sessions_;
};

}  // namespace tokentap

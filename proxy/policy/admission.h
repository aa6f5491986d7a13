// The admission policies over budgets and sessions (proxy/core/exchange.h, AdmissionPolicy):
// each refuses a request before any upstream contact with the same error and retry advice
// whatever worker asks. The trackers are shared by all workers and outlive the policies.
#pragma once

#include <optional>

#include "proxy/core/exchange.h"
#include "proxy/policy/budgets.h"
#include "proxy/policy/sessions.h"

namespace tokentap {

// Refuses an agent whose block budget (or the all-agents one) is used up: budget_exceeded,
// with Retry-After the seconds until its windows admit again.
class BudgetAdmission final : public AdmissionPolicy {
 public:
  explicit BudgetAdmission(BudgetTracker& budgets) : budgets_(budgets) {}
  std::optional<Rejection> admit(const RequestContext& ctx) override;

 private:
  BudgetTracker& budgets_;
};

// Refuses the next request of a runaway session: runaway_session. Requests without a session
// header are never refused.
class SessionAdmission final : public AdmissionPolicy {
 public:
  explicit SessionAdmission(SessionTracker& sessions) : sessions_(sessions) {}
  std::optional<Rejection> admit(const RequestContext& ctx) override;

 private:
  SessionTracker& sessions_;
};

}  // namespace tokentap

#include "proxy/policy/admission.h"

#include <utility>

namespace tokentap {

std::optional<Rejection> BudgetAdmission::admit(const RequestContext& ctx) {
  std::optional<BudgetTracker::Refusal> refused = budgets_.admit(ctx.agent);
  if (!refused) return std::nullopt;
  return Rejection{.type = ErrorType::budget_exceeded,
                   .message = std::move(refused->reason),
                   .retry = retry_after(refused->retry_after_seconds)};
}

std::optional<Rejection> SessionAdmission::admit(const RequestContext& ctx) {
  if (ctx.session.empty()) return std::nullopt;
  std::optional<std::string> why = sessions_.admit(ctx.session, ctx.agent);
  if (!why) return std::nullopt;
  return Rejection{.type = ErrorType::runaway_session, .message = std::move(*why), .retry = {}};
}

}  // namespace tokentap

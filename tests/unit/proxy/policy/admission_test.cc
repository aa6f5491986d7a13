#include "proxy/policy/admission.h"

#include <prometheus/registry.h>

#include <catch2/catch.hpp>

#include "proxy/core/label_limiter.h"

using namespace tokentap;
using namespace std::chrono_literals;

TEST_CASE("budget admission refuses a spent agent with retry advice", "[admission]") {
  prometheus::Registry registry;
  int64_t minute = 500;
  BudgetTracker budgets({Budget{"planner", 1.0, 0, BudgetAction::block}}, registry,
                        [&] { return minute * 60; });
  BudgetAdmission admission(budgets);
  RequestContext ctx;
  ctx.agent = "planner";
  CHECK_FALSE(admission.admit(ctx));
  budgets.record("planner", 1'000'000'000);
  std::optional<Rejection> rejection = admission.admit(ctx);
  REQUIRE(rejection);
  CHECK(rejection->type == ErrorType::budget_exceeded);
  CHECK(rejection->message.find("hourly budget of 1.0000 USD") != std::string::npos);
  // The advice the response carries: Retry-After the seconds until the windows admit again.
  std::optional<BudgetTracker::Refusal> refusal = budgets.admit("planner");
  REQUIRE(refusal);
  RetryAdvice expected = retry_after(refusal->retry_after_seconds);
  REQUIRE(rejection->retry);
  CHECK(rejection->retry->after_seconds == expected.after_seconds);
  CHECK(rejection->retry->should_retry == expected.should_retry);
  ctx.agent = "writer";
  CHECK_FALSE(admission.admit(ctx));
}

TEST_CASE("session admission refuses a runaway session, never a request without one",
          "[admission]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 0ms;
  SessionSettings settings;
  settings.max_requests_per_minute = 1;
  settings.runaway_action = BudgetAction::block;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });
  SessionAdmission admission(sessions);
  RequestContext ctx;
  ctx.agent = "agent-a";
  for (int i = 0; i < 5; ++i) CHECK_FALSE(admission.admit(ctx));  // no session header
  CHECK(sessions.open_sessions() == 0);
  ctx.session = "loop";
  CHECK_FALSE(admission.admit(ctx));
  std::optional<Rejection> rejection = admission.admit(ctx);
  REQUIRE(rejection);
  CHECK(rejection->type == ErrorType::runaway_session);
  CHECK(rejection->message.find("session loop is a runaway") != std::string::npos);
  CHECK_FALSE(rejection->retry);  // the type's own advice
}

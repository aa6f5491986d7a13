#include "proxy/policy/budgets.h"

#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>

using namespace tokentap;

namespace {

constexpr int64_t kUsd = 1'000'000'000;  // nano-USD

double gauge(prometheus::Registry& registry, const std::string& name, const std::string& agent,
             const std::string& window) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> labels;
      for (const auto& l : metric.label) labels[l.name] = l.value;
      if (labels["agent"] == agent && (window.empty() || labels["window"] == window)) {
        return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                              : metric.gauge.value;
      }
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("spend windows roll per minute over an hour and a day", "[budgets]") {
  SpendWindow w;
  int64_t t0 = 1'000'000;
  w.add(t0, 5);
  w.add(t0 + 30, 7);
  CHECK(w.hour(t0 + 30) == 12);
  CHECK(w.hour(t0 + 59) == 12);
  CHECK(w.hour(t0 + 60) == 7);  // minute t0 left the hour
  CHECK(w.day(t0 + 60) == 12);
  CHECK(w.hour(t0 + 90) == 0);
  CHECK(w.day(t0 + 1439) == 12);
  CHECK(w.day(t0 + 1440) == 7);
  CHECK(w.day(t0 + 1470) == 0);
  w.add(t0 + 5000, 3);  // a jump past the whole day resets it
  CHECK(w.day(t0 + 5000) == 3);
  CHECK(w.hour(t0 + 5000) == 3);
}

TEST_CASE("spend windows work from minute zero of a fake clock", "[budgets]") {
  SpendWindow w;
  w.add(0, 4);
  w.add(1, 6);
  CHECK(w.hour(59) == 10);
  CHECK(w.hour(60) == 6);
  CHECK(w.hour(61) == 0);
}

TEST_CASE("a spend window knows the first minute it holds less than a limit", "[budgets]") {
  SpendWindow w;
  int64_t t0 = 1'000'000;
  w.add(t0, 5);
  w.add(t0 + 30, 7);
  CHECK(w.first_minute_below(t0 + 30, 60, 13) == t0 + 30);  // already below
  CHECK(w.first_minute_below(t0 + 30, 60, 12) == t0 + 60);  // once minute t0 leaves
  CHECK(w.first_minute_below(t0 + 30, 60, 8) == t0 + 60);
  CHECK(w.first_minute_below(t0 + 30, 60, 7) == t0 + 90);  // a window at the limit is over it
  CHECK(w.first_minute_below(t0 + 30, 60, 5) == t0 + 90);  // once both leave
  CHECK(w.first_minute_below(t0 + 45, 60, 5) == t0 + 90);
  CHECK(w.first_minute_below(t0 + 30, SpendWindow::kMinutes, 10) == t0 + 1440);
  CHECK(w.first_minute_below(t0 + 30, SpendWindow::kMinutes, 1) == t0 + 30 + 1440);
  CHECK(w.hour(t0 + 30) == 12);  // asking changes nothing
  CHECK(w.first_minute_below(t0 + 200, 60, 1) == t0 + 200);
}

TEST_CASE("a blocking budget blocks its agent once the hourly limit is spent", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 500;
  BudgetTracker budgets({Budget{"planner", 1.0, 0, BudgetAction::block}}, registry,
                        [&] { return now * 60; });
  CHECK_FALSE(budgets.admit("planner"));
  budgets.record("planner", kUsd / 2);
  CHECK_FALSE(budgets.admit("planner"));
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == Approx(0.5));
  budgets.record("planner", kUsd / 2);
  auto why = budgets.admit("planner");
  REQUIRE(why);
  CHECK(why->reason.find("hourly budget of 1.0000 USD") != std::string::npos);
  CHECK_FALSE(budgets.admit("writer"));  // other agents are not affected
  CHECK(gauge(registry, "llm_budget_blocked_requests_total", "planner", "") == 1);
  CHECK(gauge(registry, "llm_budget_limit_usd", "planner", "1h") == 1.0);
  now += 60;  // the spend leaves the rolling hour
  CHECK_FALSE(budgets.admit("planner"));
}

TEST_CASE("an alert budget never blocks; the all-agents budget sums everyone", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 0;
  BudgetTracker budgets(
      {Budget{"planner", 0.1, 0, BudgetAction::alert}, Budget{"*", 0, 2.0, BudgetAction::block}},
      registry, [&] { return now * 60; });
  budgets.record("planner", kUsd);
  CHECK_FALSE(budgets.admit("planner"));  // alert only for its own budget
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == Approx(1.0));
  budgets.record("writer", kUsd);  // no budget of its own: counts for all
  CHECK(gauge(registry, "llm_budget_spent_usd", "all", "24h") == Approx(2.0));
  auto why = budgets.admit("anyone");
  REQUIRE(why);
  CHECK(why->reason.find("all-agents daily budget of 2.0000 USD") != std::string::npos);
  now += 24 * 60;
  CHECK_FALSE(budgets.admit("anyone"));
}

TEST_CASE("a reload keeps the spend of budgets that stay and drops removed ones", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 5'000'000;
  BudgetTracker tracker({Budget{"planner", 1.0, 0, BudgetAction::block},
                         Budget{"coder", 2.0, 0, BudgetAction::block}},
                        registry, [&] { return now * 60; });
  tracker.record("planner", kUsd / 2);
  tracker.record("coder", kUsd);
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == 0.5);

  // planner's limit drops below what it already spent; coder goes; "*" arrives.
  tracker.reconfigure(
      {Budget{"planner", 0.4, 0, BudgetAction::block}, Budget{"*", 0, 10.0, BudgetAction::alert}});
  CHECK(tracker.admit("planner").has_value());
  CHECK_FALSE(tracker.admit("coder").has_value());
  CHECK(gauge(registry, "llm_budget_limit_usd", "planner", "1h") == 0.4);
  CHECK(gauge(registry, "llm_budget_spent_usd", "coder", "1h") == -1);
  CHECK(gauge(registry, "llm_budget_limit_usd", "coder", "1h") == -1);
  CHECK(gauge(registry, "llm_budget_limit_usd", "all", "24h") == 10.0);
  CHECK(gauge(registry, "llm_budget_spent_usd", "all", "24h") == 0);  // starts empty
  tracker.record("coder", kUsd);
  CHECK(gauge(registry, "llm_budget_spent_usd", "all", "24h") == 1.0);

  tracker.reconfigure({});
  CHECK(tracker.empty());
  CHECK_FALSE(tracker.admit("planner").has_value());
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == -1);
}

TEST_CASE("a refusal says how many seconds until the windows admit again", "[budgets]") {
  prometheus::Registry registry;
  int64_t second = 500 * 60 + 15;
  BudgetTracker budgets({Budget{"planner", 1.0, 0, BudgetAction::block}}, registry,
                        [&] { return second; });
  budgets.record("planner", kUsd);
  auto refused = budgets.admit("planner");
  REQUIRE(refused);
  CHECK(refused->retry_after_seconds == 60 * 60 - 15);  // minute 500 leaves at minute 560
  second = 559 * 60 + 59;
  REQUIRE(budgets.admit("planner"));
  CHECK(budgets.admit("planner")->retry_after_seconds == 1);
  second += 1;
  CHECK_FALSE(budgets.admit("planner"));

  // Spend spread over the hour: admitted once enough of it has left.
  budgets.record("planner", kUsd / 2);  // minute 560
  second = 580 * 60;
  budgets.record("planner", kUsd / 2);  // minute 580
  second = 590 * 60 + 10;
  REQUIRE(budgets.admit("planner"));
  CHECK(budgets.admit("planner")->retry_after_seconds == (620 - 590) * 60 - 10);
}

TEST_CASE("a refusal waits for the agent's and the all-agents budget alike", "[budgets]") {
  prometheus::Registry registry;
  int64_t second = 10'000 * 60;
  BudgetTracker budgets(
      {Budget{"planner", 1.0, 0, BudgetAction::block}, Budget{"*", 0, 1.5, BudgetAction::block}},
      registry, [&] { return second; });
  budgets.record("planner", kUsd);
  second += 30 * 60;
  budgets.record("writer", kUsd);
  auto refused = budgets.admit("planner");
  REQUIRE(refused);
  CHECK(refused->reason.starts_with("agent planner's hourly budget"));
  // The all-agents day needs the first dollar gone: 24 hours after it was spent.
  CHECK(refused->retry_after_seconds == (24 * 60 - 30) * 60);
  CHECK(gauge(registry, "llm_budget_blocked_requests_total", "planner", "") == 1);
  CHECK(gauge(registry, "llm_budget_blocked_requests_total", "all", "") == 0);
  REQUIRE(budgets.admit("writer"));
  CHECK(budgets.admit("writer")->retry_after_seconds == (24 * 60 - 30) * 60);
}

#include "proxy/budgets.h"

#include <catch2/catch.hpp>
#include <prometheus/text_serializer.h>

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

TEST_CASE("a blocking budget blocks its agent once the hourly limit is spent", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 500;
  BudgetTracker budgets({Budget{"planner", 1.0, 0, BudgetAction::block}}, registry,
                        [&] { return now; });
  CHECK_FALSE(budgets.admit("planner"));
  budgets.record("planner", kUsd / 2);
  CHECK_FALSE(budgets.admit("planner"));
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == Approx(0.5));
  budgets.record("planner", kUsd / 2);
  auto why = budgets.admit("planner");
  REQUIRE(why);
  CHECK(why->find("hourly budget of 1.0000 USD") != std::string::npos);
  CHECK_FALSE(budgets.admit("writer"));  // other agents are not affected
  CHECK(gauge(registry, "llm_budget_blocked_requests_total", "planner", "") == 1);
  CHECK(gauge(registry, "llm_budget_limit_usd", "planner", "1h") == 1.0);
  now += 60;  // the spend leaves the rolling hour
  CHECK_FALSE(budgets.admit("planner"));
}

TEST_CASE("an alert budget never blocks; the all-agents budget sums everyone", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 0;
  BudgetTracker budgets({Budget{"planner", 0.1, 0, BudgetAction::alert},
                         Budget{"*", 0, 2.0, BudgetAction::block}},
                        registry, [&] { return now; });
  budgets.record("planner", kUsd);
  CHECK_FALSE(budgets.admit("planner"));  // alert only for its own budget
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == Approx(1.0));
  budgets.record("writer", kUsd);  // no budget of its own: counts for all
  CHECK(gauge(registry, "llm_budget_spent_usd", "all", "24h") == Approx(2.0));
  auto why = budgets.admit("anyone");
  REQUIRE(why);
  CHECK(why->find("all-agents daily budget of 2.0000 USD") != std::string::npos);
  now += 24 * 60;
  CHECK_FALSE(budgets.admit("anyone"));
}

TEST_CASE("a reload keeps the spend of budgets that stay and drops removed ones", "[budgets]") {
  prometheus::Registry registry;
  int64_t now = 5'000'000;
  BudgetTracker tracker({Budget{"planner", 1.0, 0, BudgetAction::block},
                         Budget{"coder", 2.0, 0, BudgetAction::block}},
                        registry, [&] { return now; });
  tracker.record("planner", kUsd / 2);
  tracker.record("coder", kUsd);
  CHECK(gauge(registry, "llm_budget_spent_usd", "planner", "1h") == 0.5);

  // planner's limit drops below what it already spent; coder goes; "*" arrives.
  tracker.reconfigure({Budget{"planner", 0.4, 0, BudgetAction::block},
                       Budget{"*", 0, 10.0, BudgetAction::alert}});
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

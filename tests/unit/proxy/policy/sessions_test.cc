#include "proxy/policy/sessions.h"

#include <catch2/catch.hpp>

#include "proxy/core/label_limiter.h"

using namespace tokentap;
using namespace std::chrono_literals;

namespace {

// Sum and count of a histogram series for `agent`, or {-1, -1} when absent.
std::pair<double, double> histogram(prometheus::Registry& registry, const std::string& name,
                                    const std::string& agent) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "agent" && label.value == agent) {
          return {metric.histogram.sample_sum, static_cast<double>(metric.histogram.sample_count)};
        }
      }
    }
  }
  return {-1, -1};
}

double counter(prometheus::Registry& registry, const std::string& name, const std::string& agent) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) {
        if (label.name == "agent" && label.value == agent) return metric.counter.value;
      }
    }
  }
  return 0;
}

}  // namespace

TEST_CASE("an idle session closes once and is observed by agent", "[sessions]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 1000s;
  SessionSettings settings;
  settings.idle_timeout = 10min;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });

  CHECK_FALSE(sessions.admit("conv-1", "planner"));
  sessions.record("conv-1", 1500, 2'000'000);  // 0.002 USD
  now += 2min;
  CHECK_FALSE(sessions.admit("conv-1", "planner"));
  sessions.record("conv-1", 500, 1'000'000);
  CHECK_FALSE(sessions.admit("", "planner"));  // no session header: not tracked
  CHECK(sessions.open_sessions() == 1);

  auto open = sessions.snapshot("planner");
  REQUIRE(open.size() == 1);
  CHECK(open[0].requests == 2);
  CHECK(open[0].tokens == 2000);
  CHECK(open[0].nano_usd == 3'000'000);

  now += 9min;
  CHECK(sessions.sweep() == 0);  // idle 9 of 10 minutes
  now += 1min;
  CHECK(sessions.sweep() == 1);
  CHECK(sessions.sweep() == 0);
  CHECK(sessions.open_sessions() == 0);
  CHECK(histogram(registry, "llm_session_requests", "planner") == std::make_pair(2.0, 1.0));
  CHECK(histogram(registry, "llm_session_tokens", "planner") == std::make_pair(2000.0, 1.0));
  auto cost = histogram(registry, "llm_session_cost_usd", "planner");
  CHECK(cost.first == Approx(0.003));
  CHECK(histogram(registry, "llm_session_duration_seconds", "planner") ==
        std::make_pair(120.0, 1.0));
}

TEST_CASE("sessions beyond max_sessions evict the least recently used", "[sessions]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 0ms;
  SessionSettings settings;
  settings.max_sessions = 2;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });
  sessions.admit("a", "x");
  sessions.admit("b", "x");
  sessions.admit("a", "x");  // a is now the most recent
  sessions.admit("c", "x");  // evicts b
  auto open = sessions.snapshot();
  REQUIRE(open.size() == 2);
  CHECK(open[0].id == "c");
  CHECK(open[1].id == "a");
  CHECK(histogram(registry, "llm_session_requests", "x").second == 1);
}

TEST_CASE("a runaway session is flagged once and blocked when configured", "[sessions]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 0ms;
  SessionSettings settings;
  settings.max_requests_per_minute = 3;
  settings.max_cost_usd = 1.0;
  settings.runaway_action = BudgetAction::block;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });
  for (int i = 0; i < 3; ++i) CHECK_FALSE(sessions.admit("loop", "agent-a"));
  auto why = sessions.admit("loop", "agent-a");
  REQUIRE(why);
  CHECK(why->find("session loop is a runaway") != std::string::npos);
  CHECK(sessions.admit("loop", "agent-a"));  // stays blocked
  CHECK(counter(registry, "llm_session_runaway_total", "agent-a") == 1);

  // Cost: a slow session that spends too much.
  for (int i = 0; i < 2; ++i) {
    now += 1min;
    CHECK_FALSE(sessions.admit("pricey", "agent-b"));
    sessions.record("pricey", 10, 600'000'000);
  }
  now += 1min;
  CHECK(sessions.admit("pricey", "agent-b"));
  CHECK(counter(registry, "llm_session_runaway_total", "agent-b") == 1);
}

TEST_CASE("an alert-only runaway is counted but never blocked", "[sessions]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 0ms;
  SessionSettings settings;
  settings.max_requests_per_minute = 1;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });
  CHECK_FALSE(sessions.admit("s", "a"));
  CHECK_FALSE(sessions.admit("s", "a"));
  CHECK_FALSE(sessions.admit("s", "a"));
  CHECK(counter(registry, "llm_session_runaway_total", "a") == 1);
}

namespace tokentap {

TEST_CASE("identical tool calls count as repeats and trip max_identical_tool_calls", "[sessions]") {
  prometheus::Registry registry;
  LabelLimiter limiter(100);
  std::chrono::milliseconds now = 0ms;
  SessionSettings settings;
  settings.max_identical_tool_calls = 2;
  settings.runaway_action = BudgetAction::block;
  SessionTracker sessions(settings, registry, limiter, [&] { return now; });
  const std::vector<ToolCallRef> same = {{.call_id = "c", .name = "ls", .arguments_hash = 7}};
  const std::vector<ToolCallRef> other = {{.call_id = "d", .name = "ls", .arguments_hash = 8}};
  CHECK_FALSE(sessions.admit("s", "a"));
  sessions.record_tool_calls("s", same);
  sessions.record_tool_calls("s", other);
  CHECK_FALSE(sessions.admit("s", "a"));
  sessions.record_tool_calls("s", same);  // 2nd identical: a repeat, still within the limit
  CHECK(counter(registry, "llm_session_tool_repeats_total", "a") == 1);
  CHECK_FALSE(sessions.admit("s", "a"));
  sessions.record_tool_calls("s", same);  // 3rd: over the limit
  CHECK(counter(registry, "llm_session_tool_repeats_total", "a") == 2);
  CHECK(counter(registry, "llm_session_runaway_total", "a") == 1);
  CHECK(sessions.admit("s", "a"));
}

}  // namespace tokentap

#include "proxy/metering/pending_tool_calls.h"

#include <catch2/catch.hpp>

using namespace tokentap;
using namespace std::chrono_literals;

namespace {

ToolCallRef call(std::string id, std::string name) {
  return {.call_id = std::move(id), .name = std::move(name), .arguments_hash = 0};
}
ToolResultRef result(std::string id, bool is_error = false, std::string name = {}) {
  return {.call_id = std::move(id), .name = std::move(name), .is_error = is_error};
}

}  // namespace

TEST_CASE("a result matches its call by agent and id, once, with the agent's time",
          "[pending_tool_calls]") {
  PendingToolCalls pending;
  std::vector<ToolCallRef> calls = {call("call_a", "get_weather"), call("call_b", "read_file")};
  pending.remember("planner", calls, 10'000ms);
  CHECK(pending.size() == 2);

  std::vector<ToolResultRef> results = {result("call_b", true), result("call_a"),
                                        result("call_zzz")};
  std::vector<PendingToolCalls::Match> m = pending.take("planner", results, 12'500ms);
  REQUIRE(m.size() == 3);
  CHECK(m[0].tool == "read_file");
  CHECK(m[0].is_error);
  CHECK(m[0].seconds == Approx(2.5));
  CHECK(m[1].tool == "get_weather");
  CHECK_FALSE(m[1].is_error);
  CHECK(m[2].tool == "unknown");
  CHECK_FALSE(m[2].seconds);
  CHECK(pending.size() == 0);
  // Seen again (a resent history): no longer pending.
  CHECK(pending.take("planner", results, 13'000ms)[1].tool == "unknown");
}

TEST_CASE("calls are per agent; Gemini results without ids match by name", "[pending_tool_calls]") {
  PendingToolCalls pending;
  std::vector<ToolCallRef> a = {call("same", "tool_a")};
  std::vector<ToolCallRef> b = {call("same", "tool_b"), call("", "get_weather")};
  pending.remember("agent-a", a, 0ms);
  pending.remember("agent-b", b, 1s);
  std::vector<ToolResultRef> results = {result("same"), result("", false, "get_weather")};
  std::vector<PendingToolCalls::Match> m = pending.take("agent-b", results, 3s);
  CHECK(m[0].tool == "tool_b");
  CHECK(m[0].seconds == Approx(2.0));
  CHECK(m[1].tool == "get_weather");
  CHECK(m[1].seconds == Approx(2.0));
  CHECK(pending.take("agent-a", results, 3s)[0].tool == "tool_a");
  // A named result without a pending call keeps the name the format gave, without a duration.
  std::vector<PendingToolCalls::Match> named = pending.take("agent-a", results, 3s);
  CHECK(named[1].tool == "get_weather");
  CHECK_FALSE(named[1].seconds);
}

TEST_CASE("the store is bounded per agent and in total, and forgets after the TTL",
          "[pending_tool_calls]") {
  PendingToolCalls pending({.max_per_agent = 3, .max_total = 5, .ttl = 60s});
  for (int i = 0; i < 5; ++i) {
    std::vector<ToolCallRef> one = {call("a" + std::to_string(i), "t")};
    pending.remember("a", one, std::chrono::milliseconds(i));
  }
  CHECK(pending.size() == 3);  // a0 and a1 went first
  std::vector<ToolResultRef> oldest = {result("a0"), result("a2")};
  std::vector<PendingToolCalls::Match> m = pending.take("a", oldest, 10ms);
  CHECK(m[0].tool == "unknown");
  CHECK(m[1].tool == "t");
  for (int i = 0; i < 4; ++i) {
    std::vector<ToolCallRef> one = {call("b" + std::to_string(i), "t")};
    pending.remember("b", one, 20ms);
  }
  CHECK(pending.size() == 5);  // a3 a4 b1 b2 b3: b0 went for b's own cap
  std::vector<ToolResultRef> b0 = {result("b0")};
  CHECK(pending.take("b", b0, 21ms)[0].tool == "unknown");
  std::vector<ToolCallRef> c0 = {call("c0", "t")};
  pending.remember("c", c0, 25ms);  // over the total: the oldest of all (a3) goes
  CHECK(pending.size() == 5);
  std::vector<ToolResultRef> a3 = {result("a3")};
  CHECK(pending.take("a", a3, 30ms)[0].tool == "unknown");

  std::vector<ToolResultRef> late = {result("a4")};
  CHECK(pending.take("a", late, 60'005ms)[0].tool == "unknown");  // past the TTL
  CHECK(pending.size() == 4);  // b1 b2 b3 (20 ms) and c0 (25 ms) are still within it
}

TEST_CASE("a Gemini result without an id takes the oldest pending call of its name",
          "[pending_tool_calls]") {
  PendingToolCalls pending;
  std::vector<ToolCallRef> first = {call("g1", "get_weather")};
  std::vector<ToolCallRef> second = {call("g2", "get_weather")};
  pending.remember("agent", first, 1s);
  pending.remember("agent", second, 2s);
  pending.remember("other", first, 0s);
  std::vector<ToolResultRef> by_name = {result("", false, "get_weather")};
  std::vector<PendingToolCalls::Match> m = pending.take("agent", by_name, 5s);
  CHECK(m[0].tool == "get_weather");
  CHECK(m[0].seconds == Approx(4.0));  // g1, the oldest
  // g1 is gone under its id too; g2 is still pending under both.
  std::vector<ToolResultRef> by_id = {result("g1"), result("g2")};
  m = pending.take("agent", by_id, 6s);
  CHECK(m[0].tool == "unknown");
  CHECK(m[1].tool == "get_weather");
  CHECK(m[1].seconds == Approx(4.0));
  CHECK_FALSE(pending.take("agent", by_name, 7s)[0].seconds);
  // A result with another id is not matched by its name to a call that has an id.
  std::vector<ToolResultRef> wrong_id = {result("zzz", false, "get_weather")};
  CHECK_FALSE(pending.take("other", wrong_id, 7s)[0].seconds);
  CHECK(pending.size() == 1);
  CHECK(pending.take("other", by_name, 8s)[0].seconds == Approx(8.0));
  CHECK(pending.size() == 0);
}

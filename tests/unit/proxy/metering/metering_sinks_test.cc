#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <string>

#include "proxy/admin/endpoints.h"
#include "proxy/core/handle_cache.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/policy/spend_sinks.h"
#include "proxy/telemetry/usage_sink.h"

using namespace tokentap;

namespace {

std::string label_of(const prometheus::ClientMetric& metric, const std::string& name) {
  for (const auto& label : metric.label) {
    if (label.name == name) return label.value;
  }
  return "";
}

}  // namespace

TEST_CASE("HandleCache: one handle per label set; capped labels past the cap are other",
          "[metrics]") {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("t_total").Help("t").Register(registry);
  LabelLimiter limiter(2);
  HandleCache cache(limiter, [](const void*, std::string_view label) {
    return label == "model" ? label : std::string_view();
  });

  prometheus::Counter& a = cache.counter(family, {{"model", "a"}, {"route", "r1"}});
  CHECK(&cache.counter(family, {{"model", "a"}, {"route", "r1"}}) == &a);
  CHECK(&cache.counter(family, {{"model", "a"}, {"route", "r2"}}) != &a);
  cache.counter(family, {{"model", "b"}, {"route", "r1"}});
  // A third model is past the cap of 2: reported as "other"; route values are never capped.
  prometheus::Counter& c = cache.counter(family, {{"model", "c"}, {"route", "r3"}});
  prometheus::Counter& d = cache.counter(family, {{"model", "d"}, {"route", "r3"}});
  CHECK(&c == &d);
  c.Increment(2);
  bool found = false;
  const auto collected = family.Collect();
  for (const auto& metric : collected.at(0).metric) {
    if (label_of(metric, "model") == "other") {
      found = true;
      CHECK(label_of(metric, "route") == "r3");
      CHECK(metric.counter.value == 2);
    }
  }
  CHECK(found);

  // Raw values past the cap still get entries: the cache is cleared at its bound and still
  // hands out the same handles afterwards.
  for (size_t i = 0; i < HandleCache::kMaxHandles + 10; ++i) {
    cache.counter(family, {{"model", std::to_string(i)}, {"route", "r1"}});
  }
  CHECK(&cache.counter(family, {{"model", "a"}, {"route", "r1"}}) == &a);
}

TEST_CASE("WorkerMetrics resolves its labels through the handle cache", "[metrics]") {
  prometheus::Registry registry;
  CoreMetrics core(registry);
  WorkerMetrics worker(core);
  prometheus::Counter& ok = worker.request("chat", 200);
  CHECK(&worker.request("chat", 200) == &ok);
  CHECK(&worker.request("chat", 502) != &ok);
  CHECK(&worker.upstream_connection("chat", true) != &worker.upstream_connection("chat", false));
  ok.Increment();
  bool found = false;
  const auto collected = core.requests.Collect();
  for (const auto& metric : collected.at(0).metric) {
    if (label_of(metric, "code") == "200") {
      found = true;
      CHECK(label_of(metric, "route") == "chat");
      CHECK(metric.counter.value == 1);
    }
  }
  CHECK(found);
}

TEST_CASE("Spend and usage sinks record metered requests only", "[metrics]") {
  prometheus::Registry registry;
  LabelLimiter limiter(1);
  SessionTracker sessions(SessionSettings{}, registry, limiter);
  SessionSink session_sink(sessions);
  UsageStore usage([] { return int64_t{29'000'000}; });
  UsageSink usage_sink(usage, limiter);

  RequestContext ctx;
  ctx.agent = "a1";
  ctx.session = "session-one-of-the-test";
  REQUIRE_FALSE(sessions.admit(ctx.session, ctx.agent));
  session_sink.on_request_end(ctx);  // not metered: nothing recorded
  usage_sink.on_request_end(ctx);
  CHECK(sessions.snapshot().at(0).tokens == 0);
  CHECK(usage_report_json(usage.query({})).dump().find("a1") == std::string::npos);

  ctx.llm.metered = true;
  ctx.llm.provider = "openai";
  ctx.llm.model = "m";
  ctx.llm.billed.input = 7;
  ctx.llm.billed.output = 3;
  ctx.llm.nano_usd = 50;
  session_sink.on_request_end(ctx);
  usage_sink.on_request_end(ctx);
  CHECK(sessions.snapshot().at(0).tokens == 10);
  CHECK(sessions.snapshot().at(0).nano_usd == 50);
  std::string recorded = usage_report_json(usage.query({})).dump();
  CHECK(recorded.find("\"a1\"") != std::string::npos);

  // Capped like the llm_* labels: the limiter admits one agent, the next is "other".
  ctx.agent = "a2";
  usage_sink.on_request_end(ctx);
  CHECK(usage_report_json(usage.query({})).dump().find("\"a2\"") == std::string::npos);
  CHECK(usage_report_json(usage.query({})).dump().find("\"other\"") != std::string::npos);
}
